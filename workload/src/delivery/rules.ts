// Which delivery rule takes an order: pure functions over the configured rules and the order's
// facts (item, spec, title). Priority is fixed: item + spec, item, keyword + spec, keyword.
// Two rules that could claim the same order at the same priority are a configuration error
// (`ruleConflicts`, reported by `check` and at start); two keyword rules with different
// keywords that both hit one title are reported per order as `ambiguous` (never a silent pick).

/** The parts of a rule matching needs (the config's rule type satisfies it). */
export interface RuleLike {
  name: string;
  itemIds?: string[] | undefined;
  keywords?: string[] | undefined;
  spec?: { name: string; value: string } | undefined;
}

export interface SpecPair {
  name: string;
  value: string;
}

export interface OrderFacts {
  itemId?: string | undefined;
  /** Item title and description (for keyword rules); undefined when not known yet. */
  title?: string | undefined;
  description?: string | undefined;
  /** 规格 pairs of the order; empty for single-spec items or when details are unknown. */
  spec: SpecPair[];
}

export type Tier = 'item+spec' | 'item' | 'keyword+spec' | 'keyword';
export const TIERS: readonly Tier[] = ['item+spec', 'item', 'keyword+spec', 'keyword'];

export function tierOf(rule: RuleLike): Tier {
  if (rule.itemIds) return rule.spec ? 'item+spec' : 'item';
  return rule.spec ? 'keyword+spec' : 'keyword';
}

export interface RuleVerdict<R extends RuleLike = RuleLike> {
  rule: R;
  tier: Tier;
  matched: boolean;
  why: string;
}

export type MatchResult<R extends RuleLike = RuleLike> =
  | { kind: 'matched'; rule: R; tier: Tier; why: string; verdicts: RuleVerdict<R>[] }
  | { kind: 'ambiguous'; rules: R[]; tier: Tier; why: string; verdicts: RuleVerdict<R>[] }
  | { kind: 'needs_item_text'; why: string; verdicts: RuleVerdict<R>[] }
  | { kind: 'none'; why: string; verdicts: RuleVerdict<R>[] };

const norm = (s: string) => s.trim().toLowerCase();

/**
 * Parses the spec text of an order page: `规格名:规格值` pairs separated by `;`, `；`, `,`, `，`
 * or new lines; full-width colons too. Text without a colon is ignored.
 */
export function parseSpec(text: string | undefined | null): SpecPair[] {
  if (!text) return [];
  const out: SpecPair[] = [];
  for (const part of text.split(/[;；,，\n]+/)) {
    const m = /^\s*([^:：]+?)\s*[:：]\s*(.+?)\s*$/.exec(part);
    if (m?.[1] && m[2]) out.push({ name: m[1], value: m[2] });
  }
  return out;
}

export function formatSpec(spec: SpecPair[]): string {
  return spec.map((p) => `${p.name}:${p.value}`).join(';');
}

function specMatches(rule: RuleLike, spec: SpecPair[]): boolean {
  if (!rule.spec) return true;
  const want = rule.spec;
  return spec.some((p) => norm(p.name) === norm(want.name) && norm(p.value) === norm(want.value));
}

function verdict<R extends RuleLike>(rule: R, facts: OrderFacts): RuleVerdict<R> {
  const tier = tierOf(rule);
  const specText = rule.spec ? ` and spec ${rule.spec.name}:${rule.spec.value}` : '';
  if (rule.itemIds) {
    if (!facts.itemId || !rule.itemIds.includes(facts.itemId)) {
      return { rule, tier, matched: false, why: `item ${facts.itemId ?? '(unknown)'} is not in itemIds` };
    }
  } else {
    if (facts.title === undefined && facts.description === undefined) {
      return { rule, tier, matched: false, why: 'item title not known yet' };
    }
    const text = norm(`${facts.title ?? ''}\n${facts.description ?? ''}`);
    const hit = (rule.keywords ?? []).find((k) => text.includes(norm(k)));
    if (!hit) return { rule, tier, matched: false, why: 'no keyword in the item title or description' };
    if (!specMatches(rule, facts.spec)) {
      return {
        rule,
        tier,
        matched: false,
        why: `keyword "${hit}" matches but the order's spec is not${specText.slice(4)}`,
      };
    }
    return { rule, tier, matched: true, why: `keyword "${hit}" in the item title/description${specText}` };
  }
  if (!specMatches(rule, facts.spec)) {
    const has = facts.spec.length ? formatSpec(facts.spec) : 'none';
    return {
      rule,
      tier,
      matched: false,
      why: `item matches but the order's spec (${has}) is not${specText.slice(4)}`,
    };
  }
  return { rule, tier, matched: true, why: `item ${facts.itemId}${specText}` };
}

/** The rule an order takes, with the verdict on every rule (for `explain-order`). */
export function matchRule<R extends RuleLike>(rules: readonly R[], facts: OrderFacts): MatchResult<R> {
  const verdicts = rules.map((r) => verdict(r, facts));
  for (const tier of TIERS) {
    const hits = verdicts.filter((v) => v.tier === tier && v.matched);
    if (hits.length === 1) {
      const hit = hits[0]!;
      return { kind: 'matched', rule: hit.rule, tier, why: `${tier} rule: ${hit.why}`, verdicts };
    }
    if (hits.length > 1) {
      return {
        kind: 'ambiguous',
        rules: hits.map((h) => h.rule),
        tier,
        why: `rules ${hits.map((h) => `"${h.rule.name}"`).join(', ')} all match at priority ${tier}`,
        verdicts,
      };
    }
    // Keyword tiers need the item text: without it, a lower tier cannot be decided yet.
    if (
      (tier === 'keyword+spec' || tier === 'keyword') &&
      facts.title === undefined &&
      facts.description === undefined &&
      verdicts.some((v) => v.tier === tier)
    ) {
      return { kind: 'needs_item_text', why: 'keyword rules need the item title', verdicts };
    }
  }
  return {
    kind: 'none',
    why: rules.length ? 'no rule matches this order' : 'no delivery rules are configured',
    verdicts,
  };
}

export interface RuleConflict {
  /** Indexes into the rules array; a < b. */
  a: number;
  b: number;
  message: string;
}

function sameSpec(x: RuleLike, y: RuleLike): boolean {
  if (!x.spec || !y.spec) return !x.spec && !y.spec;
  return norm(x.spec.name) === norm(y.spec.name) && norm(x.spec.value) === norm(y.spec.value);
}

/**
 * Pairs of rules that could both claim one order at the same priority: the same item (and the
 * same spec, or both without), or keywords where one contains the other (any title with the
 * longer one has the shorter one too) with the same spec.
 */
export function ruleConflicts(rules: readonly RuleLike[]): RuleConflict[] {
  const out: RuleConflict[] = [];
  for (let b = 0; b < rules.length; b++) {
    for (let a = 0; a < b; a++) {
      const x = rules[a]!;
      const y = rules[b]!;
      if (tierOf(x) !== tierOf(y) || !sameSpec(x, y)) continue;
      const spec = x.spec ? ` with spec ${x.spec.name}:${x.spec.value}` : '';
      if (x.itemIds && y.itemIds) {
        const shared = x.itemIds.filter((i) => y.itemIds!.includes(i));
        if (shared.length) {
          out.push({
            a,
            b,
            message: `rules "${x.name}" and "${y.name}" both claim item ${shared[0]}${spec} at priority ${tierOf(x)}`,
          });
        }
      } else if (x.keywords && y.keywords) {
        const pair = x.keywords
          .flatMap((k1) => y.keywords!.map((k2) => [k1, k2] as const))
          .find(([k1, k2]) => norm(k1).includes(norm(k2)) || norm(k2).includes(norm(k1)));
        if (pair) {
          out.push({
            a,
            b,
            message: `rules "${x.name}" and "${y.name}" both claim titles with "${pair[0].length >= pair[1].length ? pair[0] : pair[1]}"${spec} at priority ${tierOf(x)}`,
          });
        }
      }
    }
  }
  return out;
}
