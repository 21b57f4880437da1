// A hand-drawn SVG chart: bars or a line over evenly spaced points, with a max label.
export function Chart(props: { values: number[]; labels: string[]; kind?: "bar" | "line"; title: string; color?: string }) {
  const W = 600, H = 140, P = 4;
  const max = Math.max(1, ...props.values);
  const n = Math.max(1, props.values.length);
  const step = (W - 2 * P) / n;
  const y = (v: number) => H - P - (v / max) * (H - 2 * P - 14);
  const color = props.color || "var(--accent)";
  return (
    <figure class="chart">
      <figcaption>
        {props.title} <span class="muted">max {max}</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title} preserveAspectRatio="none">
        <line x1={P} x2={W - P} y1={H - P} y2={H - P} stroke="var(--line)" />
        {props.kind === "line" ? (
          <polyline
            fill="none"
            stroke={color}
            stroke-width="2"
            points={props.values.map((v, i) => `${P + step * i + step / 2},${y(v)}`).join(" ")}
          />
        ) : (
          props.values.map((v, i) => (
            <rect key={i} x={P + step * i + 1} width={Math.max(1, step - 2)} y={y(v)} height={H - P - y(v)} fill={color}>
              <title>{`${props.labels[i] || ""}: ${v}`}</title>
            </rect>
          ))
        )}
      </svg>
    </figure>
  );
}
