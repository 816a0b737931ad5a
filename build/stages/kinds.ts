// The step kinds: one registry for what a stage folder and an overlay may hold, in which order
// the kinds run, how each file is read, and the help text that lists them. (The modules that
// implement them, stages/steps/, enter every stage's cache key through plan/keys.ts.)

/** `repositories` comes from the base profile (right after the bootstrap), never from a stage file. */
export type SubstepKind = 'bootstrap' | 'repositories' | 'debconf' | 'packages-nr' | 'packages' | 'files' | 'run' | 'run-chroot';

export interface KindSpec {
  kind: SubstepKind;
  /** Its file in a stage folder, after the `NN-` prefix; none for a kind no stage file makes. */
  stageFile?: string;
  /** Its file in an overlay folder; none for a kind overlays do not have. */
  overlayFile?: string;
  /** What the file holds: a package list, a script (its #! line is read), text, a folder of files for the image. */
  content: 'packages' | 'script' | 'text' | 'folder' | 'none';
}

/** In the order kinds that share a two-digit prefix run (pi-gen's), which is also an overlay's order. */
export const KINDS: readonly KindSpec[] = [
  { kind: 'bootstrap', stageFile: 'bootstrap', content: 'packages' },
  { kind: 'repositories', content: 'none' },
  { kind: 'debconf', stageFile: 'debconf', content: 'text' },
  { kind: 'packages-nr', stageFile: 'packages-nr', overlayFile: 'packages-nr', content: 'packages' },
  { kind: 'packages', stageFile: 'packages', overlayFile: 'packages', content: 'packages' },
  { kind: 'files', stageFile: 'files', overlayFile: 'rootfs', content: 'folder' },
  { kind: 'run', stageFile: 'run.sh', overlayFile: 'run.sh', content: 'script' },
  { kind: 'run-chroot', stageFile: 'run-chroot.sh', overlayFile: 'run-chroot.sh', content: 'script' },
];

export function kindSpec(kind: SubstepKind): KindSpec {
  return KINDS.find((k) => k.kind === kind)!;
}

/** Files a stage folder may hold besides its numbered step files. */
export const STAGE_OTHER_FILES = ['stage.yaml', 'SKIP', 'README.md'];
/** Files an overlay folder may hold besides its step files. */
export const OVERLAY_OTHER_FILES = ['overlay.yaml', 'README.md'];

const stageKinds = KINDS.filter((k) => k.stageFile);
const escape = (s: string) => s.replace(/[.]/g, '\\.');

/** `NN-name` of a stage file: its prefix and kind (longer names first: packages-nr before packages). */
export const STAGE_FILE = new RegExp(`^(\\d\\d)-(${[...stageKinds].sort((a, b) => b.stageFile!.length - a.stageFile!.length).map((k) => escape(k.stageFile!)).join('|')})$`);

export function stageFileKind(fileName: string): SubstepKind | undefined {
  return stageKinds.find((k) => k.stageFile === fileName)?.kind;
}

export const STAGE_FILE_HELP = `allowed in a stage: ${[...STAGE_OTHER_FILES, ...stageKinds.map((k) => `NN-${k.stageFile}${k.content === 'folder' ? '/' : ''}`)].join(', ')} (NN = two digits)`;

/** Every file an overlay may hold, in the order its steps run. */
export const OVERLAY_FILES = [...OVERLAY_OTHER_FILES, ...KINDS.filter((k) => k.overlayFile).map((k) => k.overlayFile!)];

export function overlayFileKind(fileName: string): SubstepKind | undefined {
  return KINDS.find((k) => k.overlayFile === fileName)?.kind;
}

/** An overlay's steps run in the registry's order. */
export function kindOrder(kind: SubstepKind): number {
  return KINDS.findIndex((k) => k.kind === kind);
}
