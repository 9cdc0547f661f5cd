// A throw-away PKI for the local control plane, made with the openssl CLI (Debian ships
// OpenSSL 3, whose `req -x509 -CA` signs a leaf in one call). Keys are ECDSA P-256 (fast to
// make); the service-account signing key is RSA, the algorithm every token consumer accepts.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertPaths {
  cert: string;
  key: string;
}

export interface Pki {
  caCert: string;
  caKey: string;
  apiserver: CertPaths;
  admin: CertPaths;
  controllerManager: CertPaths;
  scheduler: CertPaths;
  /** CA of the front proxy (request header authentication) and the API server's client cert under it. */
  frontProxyCaCert: string;
  frontProxyClient: CertPaths;
  /** Private key the API server signs service-account tokens with (and the token controller). */
  serviceAccountKey: string;
  /** Its public half, which the API server verifies tokens with. */
  serviceAccountPub: string;
}

interface LeafSpec {
  name: string;
  subject: string;
  usage: 'serverAuth' | 'clientAuth';
  sans?: string[];
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

async function leaf(dir: string, caCert: string, caKey: string, spec: LeafSpec): Promise<CertPaths> {
  const cnf = join(dir, `${spec.name}.cnf`);
  const lines = [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    '[ext]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    `extendedKeyUsage = ${spec.usage}`,
  ];
  if (spec.sans?.length) lines.push(`subjectAltName = ${spec.sans.join(', ')}`);
  await writeFile(cnf, `${lines.join('\n')}\n`);
  const paths = { cert: join(dir, `${spec.name}.crt`), key: join(dir, `${spec.name}.key`) };
  await openssl([
    'req',
    '-x509',
    '-config',
    cnf,
    '-extensions',
    'ext',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    paths.key,
    '-out',
    paths.cert,
    '-days',
    '30',
    '-subj',
    spec.subject,
    '-CA',
    caCert,
    '-CAkey',
    caKey,
  ]);
  return paths;
}

async function selfSignedCa(cert: string, key: string, cn: string): Promise<void> {
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '30',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
}

/** Creates every key and certificate the control plane needs in `dir` (which must exist). */
export async function createPki(dir: string): Promise<Pki> {
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const frontProxyCaCert = join(dir, 'front-proxy-ca.crt');
  const frontProxyCaKey = join(dir, 'front-proxy-ca.key');
  await Promise.all([
    selfSignedCa(caCert, caKey, 'xianyu-local-control-plane-ca'),
    selfSignedCa(frontProxyCaCert, frontProxyCaKey, 'xianyu-local-front-proxy-ca'),
  ]);
  const serviceAccountKey = join(dir, 'sa.key');
  const serviceAccountPub = join(dir, 'sa.pub');
  const [apiserver, admin, controllerManager, scheduler, frontProxyClient] = await Promise.all([
    leaf(dir, caCert, caKey, {
      name: 'apiserver',
      subject: '/CN=kube-apiserver',
      usage: 'serverAuth',
      sans: [
        'IP:127.0.0.1',
        'IP:10.96.0.1',
        'DNS:localhost',
        'DNS:kubernetes',
        'DNS:kubernetes.default',
        'DNS:kubernetes.default.svc',
        'DNS:kubernetes.default.svc.cluster.local',
      ],
    }),
    leaf(dir, caCert, caKey, { name: 'admin', subject: '/O=system:masters/CN=admin', usage: 'clientAuth' }),
    leaf(dir, caCert, caKey, {
      name: 'controller-manager',
      subject: '/CN=system:kube-controller-manager',
      usage: 'clientAuth',
    }),
    leaf(dir, caCert, caKey, {
      name: 'scheduler',
      subject: '/CN=system:kube-scheduler',
      usage: 'clientAuth',
    }),
    leaf(dir, frontProxyCaCert, frontProxyCaKey, {
      name: 'front-proxy-client',
      subject: '/CN=front-proxy-client',
      usage: 'clientAuth',
    }),
    openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', serviceAccountKey]),
  ]);
  await openssl(['pkey', '-in', serviceAccountKey, '-pubout', '-out', serviceAccountPub]);
  return {
    caCert,
    caKey,
    apiserver: apiserver!,
    admin: admin!,
    controllerManager: controllerManager!,
    scheduler: scheduler!,
    frontProxyCaCert,
    frontProxyClient: frontProxyClient!,
    serviceAccountKey,
    serviceAccountPub,
  };
}

/** A kubeconfig with the CA and client certificate embedded, so the file can be copied anywhere. */
export async function writeKubeconfig(
  path: string,
  opts: { server: string; caCert: string; client: CertPaths; user: string },
): Promise<void> {
  const b64 = async (p: string) => (await readFile(p)).toString('base64');
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'xianyu-local',
        cluster: { server: opts.server, 'certificate-authority-data': await b64(opts.caCert) },
      },
    ],
    users: [
      {
        name: opts.user,
        user: {
          'client-certificate-data': await b64(opts.client.cert),
          'client-key-data': await b64(opts.client.key),
        },
      },
    ],
    contexts: [
      { name: 'xianyu-local', context: { cluster: 'xianyu-local', user: opts.user, namespace: 'default' } },
    ],
    'current-context': 'xianyu-local',
  };
  // JSON is YAML: every kubeconfig reader (client-go, client-node, helm) accepts it.
  await writeFile(path, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
}
