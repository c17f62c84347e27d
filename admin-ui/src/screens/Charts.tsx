// The analytics charts (recharts), loaded only when the analytics screen opens.
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';

export type Row = { start: string } & Record<string, number | string | null>;

const COLOURS = ['#1d4ed8', '#b45309', '#047857', '#7c3aed', '#be123c', '#0e7490', '#4d7c0f'];

export default function Charts({ rows, metrics }: { rows: Row[]; metrics: { key: string; label: string }[] }) {
  return (
    <div className="chart">
      <ResponsiveContainer width="100%" height={280}>
        {/* A tab stop (recharts' keyboard layer: the arrow keys step through the points), named. */}
        <LineChart
          data={rows}
          margin={{ top: 8, right: 16, bottom: 8, left: 0 }}
          aria-label={`Chart of ${metrics.map((m) => m.label).join(', ')} over time: the arrow keys step through the points`}
        >
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="start" />
          <YAxis allowDecimals={false} />
          <Tooltip />
          <Legend />
          {metrics.map((m, i) => (
            <Line key={m.key} type="monotone" dataKey={m.key} name={m.label} stroke={COLOURS[i % COLOURS.length]} dot={false} isAnimationActive={false} />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}
