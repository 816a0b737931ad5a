// NN-files/ (and an overlay's rootfs/): files copied into the target with explicit owner and mode.
// The archive is built here with tar-stream and unpacked by tar inside the target, so symlinks in
// the image (such as /lib -> usr/lib) resolve inside the image, never on the build machine.
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { renderTemplate } from '../template.ts';
import { inTarget, stepName, type StepFactory } from '../step.ts';
import type { FileEntry } from '../load.ts';

export const EXTRACT = ['tar', '--extract', '--file=-', '--directory=/', '--preserve-permissions', '--same-owner', '--keep-directory-symlink', '--no-overwrite-dir'];

/** A tar archive of the entries, owners and modes as given, templates rendered. */
export async function buildArchive(entries: readonly FileEntry[], lookup: (key: string) => unknown): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const header = {
      name: `.${e.target}`,
      mode: e.mode,
      uname: e.owner,
      gname: e.group,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
    };
    if (e.type === 'dir') {
      pack.entry({ ...header, type: 'directory' });
    } else if (e.type === 'symlink') {
      pack.entry({ ...header, type: 'symlink', linkname: e.linkTarget! });
    } else {
      const raw = readFileSync(e.source);
      const body = e.template ? Buffer.from(renderTemplate(raw.toString('utf8'), lookup)) : raw;
      pack.entry({ ...header, type: 'file' }, body);
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Files that already exist in the target and will be replaced (for the build log). */
export function replacedFiles(rootfs: string, entries: readonly FileEntry[]): string[] {
  return entries
    .filter((e) => e.type !== 'dir')
    .filter((e) => {
      try {
        lstatSync(join(rootfs, e.target));
        return true;
      } catch {
        return false;
      }
    })
    .map((e) => e.target);
}

export const filesStep: StepFactory = (sub) => {
  const entries = sub.files ?? [];
  const count = entries.filter((e) => e.type !== 'dir').length;
  return {
    title: `${sub.name}: copy ${count} file${count === 1 ? '' : 's'}`,
    tools: ['unshare', 'chroot', 'mount'],
    ops: (ctx) => {
      const step = stepName(ctx, sub);
      return [
        {
          kind: 'info',
          lines: entries
            .filter((e) => e.type !== 'dir')
            .map((e) => `${e.target} (${e.owner}:${e.group} ${e.mode.toString(8).padStart(4, '0')}${e.template ? ', from template' : ''})`),
        },
        {
          kind: 'do',
          hidden: true,
          text: 'name the files it replaces in the build log',
          fn: (st) => {
            for (const path of replacedFiles(ctx.paths.rootfs, entries)) st.note(`${step} replaces ${path}`);
          },
        },
        inTarget(ctx, EXTRACT, step, { input: { text: `archive of ${sub.name}/`, make: (st) => buildArchive(entries, (k) => st.values[k]) } }),
      ];
    },
  };
};
