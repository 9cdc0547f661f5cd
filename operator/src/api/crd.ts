import { z } from 'zod';
import {
  API_VERSION,
  CATEGORIES,
  CRD_NAME,
  GROUP,
  KIND,
  LIST_KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from './group.js';
import { NAME_SCHEMA, XianyuAccountSpec, XianyuAccountStatus } from './schema.js';

// The CustomResourceDefinition, generated from the zod schema. zod's JSON Schema (OpenAPI 3.0
// flavour) is made structural for Kubernetes: no defaults (zod applies them at run time), no
// additionalProperties:false, quantities as int-or-string, no ECMAScript-only date patterns.

type Json = Record<string, unknown>;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const QUANTITY_MARK = 'x-xianyu-quantity';

/** Makes one zod-generated JSON Schema node (and its children) structural. */
export function toStructural(node: Json): Json {
  const out: Json = {};
  if (node[QUANTITY_MARK]) {
    const stringBranch = (node.anyOf as Json[] | undefined)?.find((b) => b.type === 'string');
    return {
      ...(node.description ? { description: node.description } : {}),
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      ...(stringBranch?.pattern ? { pattern: stringBranch.pattern } : {}),
      'x-kubernetes-int-or-string': true,
    };
  }
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case 'default':
      case '$schema':
        continue;
      case 'additionalProperties':
        if (value === false) continue;
        out[key] = typeof value === 'object' && value !== null ? toStructural(value as Json) : value;
        continue;
      case 'minimum':
        if (value === -MAX_SAFE) continue;
        break;
      case 'maximum':
        if (value === MAX_SAFE) continue;
        break;
      case 'pattern':
        // zod's date-time pattern uses ECMAScript syntax; the API server checks format: date-time.
        if (node.format === 'date-time') continue;
        break;
      case 'properties': {
        const props: Json = {};
        for (const [name, child] of Object.entries(value as Json)) props[name] = toStructural(child as Json);
        out[key] = props;
        continue;
      }
      case 'items':
        out[key] = toStructural(value as Json);
        continue;
    }
    out[key] = value;
  }
  return out;
}

function jsonSchema(schema: z.ZodType): Json {
  return toStructural(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input' }) as Json);
}

export function openApiSchema(): Json {
  return {
    type: 'object',
    description:
      'A Xianyu (goofish.com) seller account: the operator runs one reply workload pod for it and reports its state.',
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of the object: xianyu.io/v1alpha1.' },
      kind: { type: 'string', description: 'Kind of the object: XianyuAccount.' },
      metadata: { type: 'object', properties: { name: NAME_SCHEMA } },
      spec: jsonSchema(XianyuAccountSpec),
      status: jsonSchema(XianyuAccountStatus),
    },
    required: ['spec'],
  };
}

const condition = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;

export const PRINTER_COLUMNS = [
  { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Lifecycle phase.' },
  { name: 'Ready', type: 'string', jsonPath: condition('Ready'), description: 'The workload is ready.' },
  {
    name: 'Connected',
    type: 'string',
    jsonPath: condition('Connected'),
    description: 'The workload is connected to Xianyu IM.',
  },
  { name: 'Login', type: 'string', jsonPath: condition('LoginValid'), description: 'The login is valid.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

export function buildCrd(): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'xianyu-operator', 'app.kubernetes.io/part-of': 'xianyu' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: LIST_KIND,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
        categories: CATEGORIES,
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS,
          schema: { openAPIV3Schema: openApiSchema() },
        },
      ],
    },
  };
}

export { API_VERSION };
