// Shared by test/chart/*.test.ts: helm and kubeconform from the local control plane's binary
// cache (test/cluster/build.sh; `make test` builds it first), rendering and parsing the chart.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../cluster/controlplane.js';

export const REPO = REPO_ROOT;
export const CHART = join(REPO, 'charts/xianyu-operator');
export const SCHEMA_LOCATION = join(
  REPO,
  'charts/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json',
);
/** helm built with `go install` reports Kubernetes v1.20 unless told; the chart needs >= 1.27. */
export const KUBE_VERSION = '1.36.3';

const run = promisify(execFile);

export function binDir(): string {
  const dir =
    process.env.XIANYU_K8S_BIN ??
    execFileSync('bash', [join(REPO, 'test/cluster/build.sh'), '--print-dir'], { encoding: 'utf8' }).trim();
  for (const tool of ['helm', 'kubeconform']) {
    if (!existsSync(join(dir, tool))) throw new Error(`${join(dir, tool)} is missing: run make cluster-bins`);
  }
  return dir;
}

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects
export type Obj = any;

const helmHome = mkdtempSync(join(tmpdir(), 'xianyu-chart-helm-'));
process.once('exit', () => rmSync(helmHome, { recursive: true, force: true }));
const helmEnv = {
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_DATA_HOME: join(helmHome, 'data'),
};

export async function tool(name: 'helm' | 'kubeconform', args: string[], input?: string): Promise<string> {
  const p = run(join(binDir(), name), args, {
    env: { ...process.env, ...helmEnv },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  if (input !== undefined) {
    p.child.stdin?.end(input);
  }
  try {
    return (await p).stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${name} ${args.join(' ')}: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** Writes values to a temp file and returns `-f FILE` (or nothing for the defaults). */
export function valuesArgs(values?: Record<string, unknown>): string[] {
  if (!values) return [];
  const file = join(helmHome, `values-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(values));
  return ['-f', file];
}

export async function renderText(
  values?: Record<string, unknown>,
  namespace = 'xianyu-system',
  release = 'xy',
): Promise<string> {
  return await tool('helm', [
    'template',
    release,
    CHART,
    '--namespace',
    namespace,
    '--kube-version',
    KUBE_VERSION,
    ...valuesArgs(values),
  ]);
}

export function parseObjects(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS())
    .filter((o) => o && typeof o === 'object');
}

export async function render(values?: Record<string, unknown>, namespace?: string): Promise<Obj[]> {
  return parseObjects(await renderText(values, namespace));
}

/** kubeconform -strict with the schemas kept in charts/schemas (no network). Returns the summary line. */
export async function kubeconform(manifests: string): Promise<string> {
  const out = await tool(
    'kubeconform',
    ['-strict', '-summary', '-output', 'text', '-schema-location', SCHEMA_LOCATION, '-'],
    manifests,
  );
  return out.trim();
}

export const find = (objs: Obj[], kind: string, name?: string): Obj[] =>
  objs.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));

export function one(objs: Obj[], kind: string, name?: string): Obj {
  const found = find(objs, kind, name);
  if (found.length !== 1)
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0];
}
