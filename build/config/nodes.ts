// The shapes of a setting's declaration (a leaf, a section, a list) and their constructors:
// settings.ts declares the tree with them, declared.ts reads it.
import { z } from 'zod';

export interface Meaning {
  /** One line for the settings table (docs/configuration.md). */
  doc?: string;
  /** How the default reads in the settings table, when the value itself does not say it well. */
  docDefault?: string;
  /** Never shown in errors or logs; enters cache keys only as a salted digest. */
  secret?: boolean;
  /** A path on the build machine: it must exist, and its content (not its name) enters cache keys. */
  file?: boolean;
  /** The file must hold this, in PEM format (checked when the config is read). */
  pem?: 'certificate' | 'private key';
  /** For a private key: the setting beside it whose certificate it must belong to. */
  certificate?: string;
  /** A URL that may carry `user:password@`: that part is never shown. */
  url?: boolean;
  /** Stages never see it: they get its crypt(3) hash (made at build time) under this key instead. */
  hashedAs?: string;
  /** The variable stage scripts get it in (default: PIHUB_ and the key in capitals). */
  env?: string;
  /** What pihub itself reads it for, beside the stages that list it in `reads` (for the settings table). */
  engine?: string;
}

export interface Leaf<T extends z.ZodType = z.ZodType> extends Meaning {
  kind: 'leaf';
  schema: T;
  /** Absent: the key has no default (required inside a list item or an optional section). */
  default?: unknown;
  optional?: boolean;
}

export interface Section<S extends Record<string, Node> = Record<string, Node>, N extends boolean = boolean> extends Meaning {
  kind: 'section';
  children: S;
  nullable: N;
  refine?: (value: never, ctx: z.core.$RefinementCtx) => void;
}

export interface List<I extends Node = Node> extends Meaning {
  kind: 'list';
  item: I;
  refine?: (value: never[], ctx: z.core.$RefinementCtx) => void;
}

export type Node = Leaf | Section | List;

type LeafOptions = Omit<Leaf, 'kind' | 'schema'>;

export function leaf<T extends z.ZodType, const O extends LeafOptions = Record<never, never>>(schema: T, o?: O): Leaf<T> & O {
  return { kind: 'leaf', schema, ...(o as O) };
}

export function section<S extends Record<string, Node>>(children: S, o: Meaning & { refine?: Section['refine'] } = {}): Section<S, false> {
  return { kind: 'section', children, nullable: false, ...o };
}

/** A section that is `null` unless given; when given, each of its keys is required. */
export function optionalSection<S extends Record<string, Node>>(children: S, o: Meaning = {}): Section<S, true> {
  return { kind: 'section', children, nullable: true, ...o };
}

export function list<I extends Node>(item: I, o: Meaning & { refine?: List['refine'] } = {}): List<I> {
  return { kind: 'list', item, ...o };
}
