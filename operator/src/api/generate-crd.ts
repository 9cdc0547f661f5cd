// Writes crds/xianyu.io_xianyuaccounts.yaml from the zod schema (never edit that file by hand).
//   node --import tsx operator/src/api/generate-crd.ts          # write
//   node --import tsx operator/src/api/generate-crd.ts --check  # exit 1 when the file drifted
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { buildCrd } from './crd.js';
import { CRD_NAME } from './group.js';

export const CRD_FILE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../crds',
  `${CRD_NAME.split('.').slice(1).join('.')}_${CRD_NAME.split('.')[0]}.yaml`,
);

export function renderCrdYaml(): string {
  return `# Generated from operator/src/api/schema.ts by operator/src/api/generate-crd.ts. Do not edit.\n${stringify(buildCrd(), { lineWidth: 0 })}`;
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const want = renderCrdYaml();
  if (process.argv.includes('--check')) {
    let have = '';
    try {
      have = readFileSync(CRD_FILE, 'utf8');
    } catch {}
    if (have !== want) {
      console.error(`${CRD_FILE} is out of date: run node --import tsx operator/src/api/generate-crd.ts`);
      process.exit(1);
    }
    console.log(`${CRD_FILE} is up to date`);
  } else {
    writeFileSync(CRD_FILE, want);
    console.log(`wrote ${join('crds', CRD_FILE.split('/crds/')[1] ?? '')}`);
  }
}
