// A base profile (bases/NAME.yaml): everything that differs between the bases pihub builds
// from — archive, architecture, extra repositories and their keys, kernel and firmware
// packages, how the boot partition is filled, which QEMU machines boot it, which Pi models it
// is for and how it is tested. Data, not code: stages read it, they never test the architecture.
import { z } from 'zod';
import { aptCredentialsProblem } from '../config/urls.ts';
import { CONSOLE } from '../config/settings.ts';

export { ARCHITECTURES, BUILT_ARCHITECTURES, BUILT_SUITES, type Architecture } from '../config/architectures.ts';
import { ARCHITECTURES, type Architecture } from '../config/architectures.ts';

/**
 * QEMU machines pihub knows how to boot (build/boot/machines.ts holds their command lines),
 * with the architectures whose kernels run there: `virt` needs a kernel with virtio and the
 * generic machine (Debian's arm64 and armmp kernels; its armel kernels have neither), the
 * board models need the board's own kernel (ARMv6 for raspi0/1ap, ARMv7 for raspi2b).
 */
export const MACHINE_ARCHITECTURES = {
  virt: ['arm64', 'armhf'],
  raspi0: ['armel'],
  raspi1ap: ['armel'],
  raspi2b: ['armhf'],
  raspi3b: ['arm64'],
} as const satisfies Record<string, readonly Architecture[]>;
export type MachineName = keyof typeof MACHINE_ARCHITECTURES;
export const MACHINES = Object.keys(MACHINE_ARCHITECTURES) as [MachineName, ...MachineName[]];

/**
 * How the boot partition gets its kernel, device trees, config.txt and cmdline.txt:
 *  - `debian`: Debian's raspi-firmware; its kernel and initramfs hooks copy the kernel, initrd
 *    and DTBs to /boot/firmware and write config.txt/cmdline.txt from /etc/default/raspi-firmware
 *    (lasting additions in raspi-firmware-custom and raspi-extra-cmdline).
 *  - `raspberrypi`: Raspberry Pi's raspi-firmware and linux-image-rpi-* (Raspberry Pi OS from
 *    bookworm on): the hooks copy kernels as kernel8.img/kernel_2712.img with their initramfs;
 *    config.txt and cmdline.txt are the image's own files (`auto_initramfs=1`).
 *  - `raspberrypi-legacy`: raspberrypi-bootloader and raspberrypi-kernel (Raspbian up to
 *    bullseye): the packages put kernel*.img, DTBs and overlays straight into /boot; no
 *    initramfs; config.txt and cmdline.txt are the image's own files.
 */
export const BOOT_SCHEMES = ['debian', 'raspberrypi', 'raspberrypi-legacy'] as const;

const NAME = /^[a-z0-9][a-z0-9-]*$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?(\/[a-z0-9-]+)?$/;
const packageName = z.string().regex(PACKAGE, { error: 'must be a Debian package name such as `linux-image-armmp`' });
const packageList = z.array(packageName);
const url = z.string().regex(/^(https?|file):\/\/\S+$/, { error: 'must be a URL such as `http://deb.debian.org/debian`' }).superRefine((u, ctx) => {
  const problem = aptCredentialsProblem(u);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const component = z.string().regex(/^[a-z][a-z0-9-]*$/, { error: 'must be an archive component such as `main`' });
const suite = z.string().regex(/^[a-z][a-z0-9.-]*$/, { error: 'must be a suite or code name such as `trixie`' });
const fingerprint = z
  .string()
  .transform((s) => s.replace(/\s+/g, '').toUpperCase())
  .pipe(z.string().regex(/^[0-9A-F]{40}$/, { error: 'must be an OpenPGP fingerprint: 40 hexadecimal digits' }));
/** A keyring file, relative to bases/ (or absolute): binary (.gpg/.pgp) or armored (.asc). */
const keyringFile = z.string().regex(/^[^\s]+\.(gpg|pgp|asc)$/, { error: 'must be a keyring file name ending in .gpg, .pgp or .asc' });
const moduleName = z.string().regex(/^[a-z0-9_-]+$/, { error: 'must be a kernel module name such as `sdhci-iproc`' });
const dtbName = z.string().regex(/^[a-z0-9-]+\.dtb$/, { error: 'must be a device tree file name such as `bcm2837-rpi-3-b.dtb`' });

/** An apt repository besides the main archive, trusted through its own keyring only (`Signed-By`). */
export const RepositorySchema = z.strictObject({
  /** Also the name of its files in the image: /etc/apt/sources.list.d/NAME.sources and /etc/apt/keyrings/NAME.* */
  name: z.string().regex(NAME, { error: 'must be a lowercase name such as `raspberrypi`' }),
  uri: url,
  suites: z.array(suite).min(1),
  components: z.array(component).min(1),
  keyring: keyringFile,
  /** The keys the keyring must hold, exactly: a keyring with any other key is refused. */
  fingerprints: z.array(fingerprint).min(1),
});

export const MachineSchema = z.strictObject({
  machine: z.enum(MACHINES, { error: `must be one of ${MACHINES.map((m) => `\`${m}\``).join(', ')}` }),
  /** The board's device tree from the image's boot partition (board models only). */
  dtb: dtbName.optional(),
  /** What a boot in this machine is expected to reach. */
  reaches: z.enum(['hub', 'login'], { error: 'must be `hub` (the full hub check) or `login` (a login prompt)' }),
});

export const TESTED = ['e2e', 'slow', 'bench', 'stand-in', 'none'] as const;

export const ProfileSchema = z
  .strictObject({
    description: z.string().min(1),
    distribution: z.enum(['debian', 'raspios', 'raspbian']),
    suite,
    architecture: z.enum(Object.keys(ARCHITECTURES) as [Architecture, ...Architecture[]], {
      error: `must be one of ${Object.keys(ARCHITECTURES).map((a) => `\`${a}\``).join(', ')}`,
    }),
    /** The suite's Python 3 (major.minor): byte-compiling natively needs the same one, pip pins depend on it. */
    python: z.string().regex(/^3\.\d+$/, { error: 'must be a Python version such as `3.13`' }),
    mirror: url,
    components: z.array(component).min(1),
    /** More suites of the main archive (same mirror, components and keyring), such as
     * `trixie-backports`; a package comes from one only where a list names it `NAME/SUITE`. */
    extra_suites: z.array(suite).default([]),
    /** The main archive's keyring; null: the build machine's debian-archive-keyring (Debian's own archive). */
    keyring: keyringFile.nullable(),
    fingerprints: z.array(fingerprint).default([]),
    repositories: z.array(RepositorySchema).default([]),
    packages: z.strictObject({
      kernel: packageList.min(1),
      firmware: packageList,
      /** BLAS/LAPACK for numpy; empty: numpy's own default (the reference libblas3/liblapack3). */
      blas: packageList,
      /** Packages of the stages' lists that this suite names differently or lacks: `NAME: [replacements]` ([] drops it). */
      substitute: z.record(packageName, packageList).default({}),
    }),
    boot: z.strictObject({
      scheme: z.enum(BOOT_SCHEMES, { error: `must be one of ${BOOT_SCHEMES.map((s) => `\`${s}\``).join(', ')}` }),
      /** Where the FAT partition is mounted in the running system. */
      mount: z.enum(['/boot/firmware', '/boot']),
      initramfs: z.boolean(),
      /** How the kernel finds the root file system: by label needs an initramfs. */
      root: z.enum(['label', 'partuuid']),
      /** Kernel consoles, the last one gets the boot messages (serial first, then the screen). */
      consoles: z.array(CONSOLE).min(1),
      /** `debian`: extra lines after raspi-firmware's own config.txt; otherwise the whole config.txt. */
      config_txt: z.string(),
      /** Extra kernel arguments after pihub's own. */
      cmdline: z.string().default(''),
      /** Device trees the boot partition must carry (the image audit checks them). */
      dtbs: z.array(dtbName).min(1),
      /** Kernel modules the boards need in the initramfs to reach their root file system on the
       * SD card (the end-to-end tests list the card's initramfs against them). */
      initramfs_modules: z.array(moduleName).default([]),
    }),
    hub: z.strictObject({
      /** How the hub can be installed on this base; the first is the default. */
      install: z.array(z.enum(['apt', 'pip'])).min(1),
      /** configurable-http-proxy sources that work here; the first is the default. */
      proxy: z.array(z.enum(['apt', 'npm'])).min(1),
      /** The npm version spec of configurable-http-proxy for `npm` (the suite's Node.js decides). */
      npm_proxy_version: z.string().min(1),
      /** Pinned requirements for `pip`, relative to bases/: the newest releases this Python runs. */
      requirements: z.string().regex(/\.txt$/, { error: 'must be a requirements file (.txt) under bases/' }),
    }),
    qemu: z.strictObject({
      /** The binfmt_misc entry (qemu-user) that runs this architecture's programs during the build. */
      user: z.enum(['qemu-aarch64', 'qemu-arm']),
      machines: z.array(MachineSchema).min(1),
    }),
    models: z.array(z.string().min(1)).min(1),
    tested: z.strictObject({
      /** e2e: built and booted in the end-to-end tier; slow/bench: booted outside the default tiers;
       * stand-in: its archives are not reachable from CI, the machinery is tested with local stand-ins;
       * none: not built or booted yet. */
      how: z.enum(TESTED),
      summary: z.string().min(1),
    }),
  })
  .superRefine((p, ctx) => {
    const want = ARCHITECTURES[p.architecture].qemuUser;
    if (p.qemu.user !== want) {
      ctx.addIssue({ code: 'custom', path: ['qemu', 'user'], message: `runs ${p.architecture} programs through \`${want}\`, not \`${p.qemu.user}\`` });
    }
    if (p.keyring !== null && p.fingerprints.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['fingerprints'], message: 'the main archive has its own keyring, so list the fingerprints it must hold' });
    }
    if (p.keyring === null && p.fingerprints.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['fingerprints'], message: 'only with a `keyring` of its own (Debian\'s archive uses the build machine\'s debian-archive-keyring)' });
    }
    if (p.boot.root === 'label' && !p.boot.initramfs) {
      ctx.addIssue({ code: 'custom', path: ['boot', 'root'], message: '`label` needs an initramfs (the kernel alone understands only PARTUUID=); use `partuuid`' });
    }
    if (p.boot.scheme === 'raspberrypi-legacy' && p.boot.mount !== '/boot') {
      ctx.addIssue({ code: 'custom', path: ['boot', 'mount'], message: 'raspberrypi-bootloader writes to /boot: the FAT partition must be mounted there' });
    }
    if (p.boot.scheme !== 'raspberrypi-legacy' && p.boot.mount !== '/boot/firmware') {
      ctx.addIssue({ code: 'custom', path: ['boot', 'mount'], message: 'raspi-firmware writes to /boot/firmware: the FAT partition must be mounted there' });
    }
    if (p.hub.install.includes('apt') && p.hub.proxy.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['hub', 'proxy'], message: 'name at least one proxy source' });
    }
    p.extra_suites.forEach((s, i) => {
      if (!s.startsWith(`${p.suite}-`)) ctx.addIssue({ code: 'custom', path: ['extra_suites', i], message: `must be a suite of ${p.suite} such as \`${p.suite}-backports\`` });
    });
    const names = new Set<string>();
    p.repositories.forEach((r, i) => {
      if (names.has(r.name)) ctx.addIssue({ code: 'custom', path: ['repositories', i, 'name'], message: `duplicate repository name \`${r.name}\`` });
      names.add(r.name);
    });
    p.qemu.machines.forEach((m, i) => {
      const board = m.machine !== 'virt';
      if (board && !m.dtb) ctx.addIssue({ code: 'custom', path: ['qemu', 'machines', i, 'dtb'], message: `the \`${m.machine}\` board model boots with the image's own device tree: name it` });
      if (!board && m.dtb) ctx.addIssue({ code: 'custom', path: ['qemu', 'machines', i, 'dtb'], message: '`virt` makes its own device tree; leave `dtb` out' });
      if (m.dtb && !p.boot.dtbs.includes(m.dtb)) {
        ctx.addIssue({ code: 'custom', path: ['qemu', 'machines', i, 'dtb'], message: `\`${m.dtb}\` is not among \`boot.dtbs\`, so the image may not carry it` });
      }
      const runs: readonly Architecture[] = MACHINE_ARCHITECTURES[m.machine];
      if (!runs.includes(p.architecture)) {
        ctx.addIssue({ code: 'custom', path: ['qemu', 'machines', i, 'machine'], message: `\`${m.machine}\` runs ${runs.join(' and ')} kernels, not ${p.architecture}` });
      }
    });
  });

export type BaseProfile = z.infer<typeof ProfileSchema>;
export type Repository = z.infer<typeof RepositorySchema>;
export type MachineSpec = z.infer<typeof MachineSchema>;
