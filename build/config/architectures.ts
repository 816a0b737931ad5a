// What the engine builds: Debian architectures (with the qemu-user that runs each here) and
// suites. The config's `base.*` settings and the base profiles (bases/schema.ts) both use them.

/** Debian architectures pihub builds for, and the qemu-user binfmt entry that runs each here. */
export const ARCHITECTURES = {
  arm64: { qemuUser: 'qemu-aarch64' },
  armhf: { qemuUser: 'qemu-arm' },
  armel: { qemuUser: 'qemu-arm' },
} as const;
export type Architecture = keyof typeof ARCHITECTURES;

/** The suites and architectures the engine builds today: the config's `base.suite` and `base.architecture` take only these. */
export const BUILT_SUITES = ['trixie'] as const;
export const BUILT_ARCHITECTURES = ['arm64', 'armhf'] as const satisfies readonly Architecture[];
