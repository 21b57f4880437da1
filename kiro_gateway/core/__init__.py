"""The neutral middle: a conversation and a streamed reply, as no client and no Kiro spell them."""
