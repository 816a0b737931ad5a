// The boot partition as each Raspberry Pi's firmware reads it, checked from the image file
// (mtools, no mount): for every board a base names, the kernel, initramfs and device tree its
// config.txt sections choose are on the partition (on the Pi 5 family the tree must be a
// BCM2712 one, or the firmware's os_check refuses the card), cmdline.txt has the base's
// consoles, and a Pi 5 of the D0 stepping gets upstream's D0 tree through pihub's overlay.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BaseProfile } from '../../build/bases/schema.ts';
import { parseConfigTxt } from '../../build/boot/qemu.ts';

/**
 * What each board's firmware looks for: the config.txt sections that apply to it (besides
 * `[all]`) and the device tree it loads when config.txt names none. With `upstream_kernel=1`
 * (Debian's config.txt) the firmware prefers upstream Linux's names, which from the BCM2711 on
 * are Raspberry Pi's too. The Pi 5 family: `[pi5]` also matches the Pi 500 and CM5; the
 * firmware asks for bcm2712-rpi-500.dtb and bcm2712-rpi-cm5-cm5io.dtb, which upstream Linux
 * does not have (docs/boards.md has the sources).
 */
export const FIRMWARE_BOARDS: Readonly<Record<string, { filters: readonly string[]; dtb: string; bcm2712?: true }>> = {
  'Pi 2 B': { filters: ['pi2'], dtb: 'bcm2836-rpi-2-b.dtb' },
  'Pi 3 B': { filters: ['pi3'], dtb: 'bcm2837-rpi-3-b.dtb' },
  'Pi 3 B+': { filters: ['pi3', 'pi3+'], dtb: 'bcm2837-rpi-3-b-plus.dtb' },
  'Pi 3 A+': { filters: ['pi3', 'pi3+'], dtb: 'bcm2837-rpi-3-a-plus.dtb' },
  'Zero 2 W': { filters: ['pi02'], dtb: 'bcm2837-rpi-zero-2-w.dtb' },
  CM3: { filters: ['cm3'], dtb: 'bcm2837-rpi-cm3-io3.dtb' },
  'Pi 4 B': { filters: ['pi4'], dtb: 'bcm2711-rpi-4-b.dtb' },
  'Pi 400': { filters: ['pi4', 'pi400'], dtb: 'bcm2711-rpi-400.dtb' },
  CM4: { filters: ['pi4', 'cm4'], dtb: 'bcm2711-rpi-cm4-io.dtb' },
  'Pi 5': { filters: ['pi5'], dtb: 'bcm2712-rpi-5-b.dtb', bcm2712: true },
  'Pi 500': { filters: ['pi5', 'pi500'], dtb: 'bcm2712-rpi-500.dtb', bcm2712: true },
  CM5: { filters: ['pi5', 'cm5'], dtb: 'bcm2712-rpi-cm5-cm5io.dtb', bcm2712: true },
};

const MTOOLS = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

/** The names in a folder of the image's FAT partition (at byte `offset`). */
export function fatFiles(image: string, offset: number, dir = ''): string[] {
  return execFileSync('mdir', ['-b', '-i', `${image}@@${offset}`, `::${dir}`], { env: MTOOLS })
    .toString()
    .split('\n')
    // mdir -b prints each entry with its path: `::/overlays/bcm2712d0.dtbo`.
    .map((l) => l.trim().replace(/^::\/?/, '').slice(dir ? dir.length + 1 : 0))
    .filter(Boolean);
}

/** A file of the image's FAT partition, as text. */
export function fatFile(image: string, offset: number, name: string): string {
  return execFileSync('mtype', ['-i', `${image}@@${offset}`, `::${name}`], { env: MTOOLS }).toString();
}

export interface BootAudit {
  /** One line per board: what its firmware would load. */
  boards: string[];
  problems: string[];
}

/** The boot partition of `image` checked for every board `profile.models` names. */
export function auditBootPartition(image: string, offset: number, profile: Pick<BaseProfile, 'models' | 'boot'>): BootAudit {
  const files = new Set(fatFiles(image, offset));
  const problems: string[] = [];
  const boards: string[] = [];
  const configTxt = fatFile(image, offset, 'config.txt');
  const scratch = mkdtempSync(join(tmpdir(), 'pihub-boot-audit-'));
  const copy = (name: string) => {
    const dest = join(scratch, name.replace(/\//g, '_'));
    execFileSync('mcopy', ['-n', '-i', `${image}@@${offset}`, `::${name}`, dest], { env: MTOOLS });
    return dest;
  };
  try {
    for (const d of profile.boot.dtbs) if (!files.has(d)) problems.push(`device tree ${d} (boot.dtbs) is not on the boot partition`);
    for (const model of profile.models) {
      const board = FIRMWARE_BOARDS[model];
      if (!board) continue;
      const c = parseConfigTxt(configTxt, board.filters);
      const dtb = c.deviceTree ?? board.dtb;
      boards.push(`${model}: ${c.kernel ?? '(no kernel=)'}, ${c.initramfs ?? '(no initramfs)'}, ${dtb}, ${c.cmdlineFile}`);
      for (const [what, name] of [['kernel', c.kernel], ['initramfs', c.initramfs], ['device tree', dtb], ['cmdline', c.cmdlineFile]] as const) {
        if (!name) problems.push(`${model}: config.txt names no ${what}`);
        else if (!files.has(name)) problems.push(`${model}: its ${what} ${name} is not on the boot partition`);
      }
      if (board.bcm2712 && files.has(dtb)) {
        // os_check: the firmware boots the card only if the tree it would load is a BCM2712 one.
        const compatible = execFileSync('fdtget', ['-t', 's', copy(dtb), '/', 'compatible']).toString();
        if (!/\bbrcm,bcm2712\b/.test(compatible)) problems.push(`${model}: ${dtb} is not a BCM2712 device tree (compatible: ${compatible.trim()}); the firmware's os_check would refuse the card`);
      }
    }
    const cmdline = fatFile(image, offset, 'cmdline.txt');
    const consoles = [...cmdline.matchAll(/(?:^|\s)console=(\S+)/g)].map((m) => m[1]);
    if (consoles.join(' ') !== profile.boot.consoles.join(' ')) {
      problems.push(`cmdline.txt's consoles are ${consoles.join(' ') || 'none'}, not the base's ${profile.boot.consoles.join(' ')}`);
    }
    if (profile.boot.dtbs.includes('bcm2712-d-rpi-5-b.dtb')) {
      // A D0 Pi 5 loads the C1 tree and applies overlays/bcm2712d0.dtbo: the result must be upstream's D0 tree.
      if (!fatFiles(image, offset, 'overlays').includes('bcm2712d0.dtbo')) {
        problems.push('overlays/bcm2712d0.dtbo is not on the boot partition: a D0 Pi 5 would run the C1 tree');
      } else {
        const applied = join(scratch, 'applied.dtb');
        execFileSync('fdtoverlay', ['-i', copy('bcm2712-rpi-5-b.dtb'), '-o', applied, copy('overlays/bcm2712d0.dtbo')]);
        const source = (dtb: string) => execFileSync('dtc', ['-q', '-s', '-I', 'dtb', '-O', 'dts', dtb]).toString();
        if (source(applied) !== source(copy('bcm2712-d-rpi-5-b.dtb'))) {
          problems.push('bcm2712-rpi-5-b.dtb with overlays/bcm2712d0.dtbo is not bcm2712-d-rpi-5-b.dtb: the overlay no longer fits this kernel\'s trees');
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { boards, problems };
}

/** The modules of `wanted` that an initramfs listing (lsinitramfs) lacks; `-` and `_` are one in module names. */
export function missingModules(listing: string, wanted: readonly string[]): string[] {
  const norm = (n: string) => n.replace(/-/g, '_');
  const have = new Set([...listing.matchAll(/\/([^/\s]+)\.ko(?:\.(?:xz|zst|gz))?$/gm)].map((m) => norm(m[1]!)));
  return wanted.filter((m) => !have.has(norm(m)));
}
