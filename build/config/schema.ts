// The config's zod schema and its defaults, derived from the declarations in settings.ts.
import { z } from 'zod';
import { SETTINGS } from './settings.ts';
import { type Node } from './nodes.ts';

type ObjectOf<S> = z.ZodObject<{ -readonly [K in keyof S]: SchemaOf<S[K]> }, z.core.$strict>;

/** The zod type a declaration becomes. */
export type SchemaOf<N> =
  N extends { kind: 'leaf'; schema: infer T extends z.ZodType } ? (N extends { optional: true } ? z.ZodOptional<T> : T)
  : N extends { kind: 'section'; children: infer S; nullable: infer Nl } ? (Nl extends true ? z.ZodNullable<ObjectOf<S>> : ObjectOf<S>)
  : N extends { kind: 'list'; item: infer I } ? z.ZodArray<SchemaOf<I>>
  : never;

function schemaOf(node: Node, inList: boolean): z.ZodType {
  switch (node.kind) {
    case 'leaf':
      if (node.optional) return node.schema.optional();
      // Defaults of keys in list items come from the schema; all others from DEFAULTS below.
      return inList && node.default !== undefined ? node.schema.default(node.default as never) : node.schema;
    case 'section': {
      let s: z.ZodType = z.strictObject(Object.fromEntries(Object.entries(node.children).map(([k, c]) => [k, schemaOf(c, inList)])));
      if (node.refine) s = s.superRefine(node.refine as (v: unknown, ctx: z.core.$RefinementCtx) => void);
      return node.nullable ? s.nullable() : s;
    }
    case 'list': {
      const s = z.array(schemaOf(node.item, true));
      return node.refine ? s.superRefine(node.refine as (v: unknown[], ctx: z.core.$RefinementCtx) => void) : s;
    }
  }
}

export const ConfigSchema = schemaOf(SETTINGS, false) as unknown as SchemaOf<typeof SETTINGS>;

export type BuildConfig = z.infer<typeof ConfigSchema>;
export type UserConfig = BuildConfig['users'][number];

function defaultsOf(node: Node): unknown {
  switch (node.kind) {
    case 'leaf':
      return node.default;
    case 'section':
      return node.nullable ? null : Object.fromEntries(Object.entries(node.children).map(([k, c]) => [k, defaultsOf(c)]).filter(([, v]) => v !== undefined));
    case 'list':
      return [];
  }
}

/** Every default in one place: a config file, overlays and --set only say what differs. */
export const DEFAULTS = defaultsOf(SETTINGS) as BuildConfig;
