"""From a neutral conversation to Kiro and back: the model catalogue, attempts, failover, the reply stream."""
