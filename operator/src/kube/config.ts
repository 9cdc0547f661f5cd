import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';

// Where the API server is and how to authenticate, without loading all of client-node (its
// generated API costs ~90 MB of RSS): kubeconfig files with certificates or tokens, and the
// in-cluster service account (token re-read, as bound tokens rotate). Kubeconfigs that need
// exec or auth-provider plugins fall back to client-node's KubeConfig.

export interface Connection {
  server: string;
  /** Adds TLS material and auth headers to a request's options. */
  apply(opts: RequestOptions): Promise<void>;
}

export function connectionFromKubeConfig(kc: KubeConfig): Connection {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  return { server: cluster.server, apply: (opts) => kc.applyToHTTPSOptions(opts) };
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

function tokenReader(file: string): () => string {
  let token = '';
  let readAt = 0;
  return () => {
    if (Date.now() - readAt > 60_000) {
      token = readFileSync(file, 'utf8').trim();
      readAt = Date.now();
    }
    return token;
  };
}

function inCluster(): Connection {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host)
    throw new Error('no kubeconfig found and not running in a cluster (KUBERNETES_SERVICE_HOST unset)');
  const ca = readFileSync(`${SA_DIR}/ca.crt`);
  const token = tokenReader(`${SA_DIR}/token`);
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    async apply(opts) {
      opts.ca = ca;
      opts.headers = { ...opts.headers, authorization: `Bearer ${token()}` };
    },
  };
}

interface NamedEntry<T> {
  name: string;
  [k: string]: unknown;
  value?: T;
}

function pick<T>(list: unknown, name: string, field: string): T {
  const entry = ((list ?? []) as NamedEntry<T>[]).find((e) => e.name === name);
  if (!entry) throw new Error(`kubeconfig: no ${field} named ${name}`);
  return (entry as Record<string, unknown>)[field] as T;
}

export async function loadConnection(file?: string): Promise<Connection> {
  const path =
    file ??
    process.env.KUBECONFIG?.split(':').find(Boolean) ??
    (existsSync(resolve(homedir(), '.kube/config')) ? resolve(homedir(), '.kube/config') : undefined);
  if (!path) return inCluster();
  const doc = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const context = pick<{ cluster: string; user: string }>(
    doc.contexts,
    doc['current-context'] as string,
    'context',
  );
  const cluster = pick<Record<string, string | boolean>>(doc.clusters, context.cluster, 'cluster');
  const user = pick<Record<string, unknown>>(doc.users, context.user, 'user') ?? {};
  if (user.exec || user['auth-provider'] || user.username) {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return connectionFromKubeConfig(kc);
  }
  const base = dirname(resolve(path));
  const material = (data: unknown, fileRef: unknown): Buffer | undefined => {
    if (typeof data === 'string') return Buffer.from(data, 'base64');
    if (typeof fileRef === 'string') return readFileSync(resolve(base, fileRef));
    return undefined;
  };
  const ca = material(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = material(user['client-certificate-data'], user['client-certificate']);
  const key = material(user['client-key-data'], user['client-key']);
  const insecure = cluster['insecure-skip-tls-verify'] === true;
  const staticToken = typeof user.token === 'string' ? user.token : undefined;
  const fileToken =
    typeof user.tokenFile === 'string' ? tokenReader(resolve(base, user.tokenFile)) : undefined;
  return {
    server: String(cluster.server),
    async apply(opts) {
      if (ca) opts.ca = ca;
      if (cert) opts.cert = cert;
      if (key) opts.key = key;
      if (insecure) opts.rejectUnauthorized = false;
      const token = staticToken ?? fileToken?.();
      if (token) opts.headers = { ...opts.headers, authorization: `Bearer ${token}` };
    },
  };
}
