import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

// One results table for every benchmark: this run beside the previous run (bench/*.json) and the
// target, printed and written to bench/<NAME>.md and bench/<name>.json.

export interface Result {
  name: string;
  value: number;
  unit: string;
  target: string;
  ok: boolean;
}

export interface Run {
  /** What varies between runs of one benchmark (storage, concurrency ...). */
  variant: string;
  results: Result[];
}

export function report(o: { title: string; file: string; about: string; runs: Run[]; write: boolean }): void {
  const json = new URL(`./${o.file}.json`, import.meta.url).pathname;
  const md = new URL(`./${o.file.toUpperCase()}.md`, import.meta.url).pathname;
  const previous = new Map<string, number>();
  if (existsSync(json)) {
    const prev = JSON.parse(readFileSync(json, 'utf8')) as { runs?: Run[] };
    for (const run of prev.runs ?? [])
      for (const r of run.results) previous.set(`${run.variant}/${r.name}`, r.value);
  }
  const fmt = (v: number | undefined) =>
    v === undefined ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(2);
  const rows = o.runs.flatMap((run) =>
    run.results.map(
      (r) =>
        `| ${run.variant} | ${r.name} | ${fmt(r.value)} ${r.unit} | ${fmt(previous.get(`${run.variant}/${r.name}`))} | ${r.target} ${r.unit} | ${r.ok ? 'ok' : 'MISSED'} |`,
    ),
  );
  const header = `${o.title}, ${new Date().toISOString().slice(0, 10)}, Node ${process.versions.node}, ${availableParallelism()} cores`;
  const table = [
    header,
    '',
    '| variant | metric | this run | previous run | target | |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  console.log(`\n${table}\n`);
  if (o.write) {
    writeFileSync(json, `${JSON.stringify({ date: new Date().toISOString(), runs: o.runs }, null, 2)}\n`);
    writeFileSync(md, `# ${o.title}\n\n${o.about}\n\n${table}\n`);
  }
}
