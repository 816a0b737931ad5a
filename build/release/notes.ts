// Release notes: what a person flashing the image wants to know first, from the image's package list.
import { DEFAULTS } from '../config/schema.ts';
import type { ManifestRead } from '../image/manifest.ts';

export interface Versions {
  kernel?: string;
  jupyterhub?: string;
  jupyterlab?: string;
  numpy?: string;
  python?: string;
}

/** Versions of the main parts, from an image's .info (lines `name<TAB>version<TAB>arch`). */
export function versionsFromInfo(info: string): Versions {
  const pkgs = new Map<string, string>();
  for (const line of info.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, version] = line.split('\t');
    if (name && version) pkgs.set(name, version);
  }
  // The kernel package's name carries the kernel release: linux-image-6.12.57+deb13-arm64.
  const kernel = [...pkgs.keys()].filter((n) => /^linux-image-\d/.test(n)).sort().pop();
  const python = [...pkgs.keys()].filter((n) => /^python3\.\d+$/.test(n)).sort().pop();
  return {
    kernel: kernel ? `${kernel.replace(/^linux-image-/, '')} (${pkgs.get(kernel)})` : undefined,
    jupyterhub: pkgs.get('jupyterhub'),
    jupyterlab: pkgs.get('jupyterlab') ?? pkgs.get('python3-jupyterlab'),
    numpy: pkgs.get('python3-numpy'),
    python: python ? pkgs.get(python) : undefined,
  };
}

export interface NotesImage {
  manifest: ManifestRead;
  versions: Versions;
  /** File names published for this image. */
  files: string[];
}

/** Markdown release notes for a tag. */
export function releaseNotes(tag: string, images: readonly NotesImage[], repositoryUrl: string): string {
  const lines = [
    `# pihub ${tag}`,
    '',
    'A Raspberry Pi SD-card image that boots into a home JupyterHub: everyone with an account on the Pi',
    'logs in from a browser and gets JupyterLab with numpy. Each image below was booted in QEMU and passed',
    "the hub's end-to-end check (log in, start a server, run a numpy kernel) before it was published.",
    '',
    '## Flash it with Raspberry Pi Imager',
    '',
    'Open this release in Raspberry Pi Imager, which then offers its OS customisation (host name, user and',
    'password, Wi-Fi, SSH key, time zone, keyboard):',
    '',
    '```',
    `rpi-imager --repo ${repositoryUrl}`,
    '```',
    '',
    `or App Options → Content Repository → Use custom URL: \`${repositoryUrl}\`. Choose your Raspberry Pi,`,
    `then the pihub image, then your SD card. After the first boot open \`http://<host name>.local:${images[0]?.manifest.hub?.port ?? DEFAULTS.hub.port}/\`.`,
    '',
  ];
  for (const { manifest: m, versions: v, files } of images) {
    lines.push(`## ${m.file}`, '');
    lines.push('| | version |', '|---|---|');
    const row = (what: string, version: string | undefined) => lines.push(`| ${what} | ${version ?? 'not in the image'} |`);
    row('Linux kernel', v.kernel);
    row('JupyterHub', v.jupyterhub);
    row('JupyterLab', v.jupyterlab);
    row('numpy', v.numpy);
    row('Python', v.python);
    lines.push('', `Debian ${m.suite} ${m.architecture}, built ${m.date}. Uncompressed image: ${m.size} bytes, sha256 \`${m.raw_sha256}\`.`, '');
    lines.push(`Files: ${files.map((f) => `\`${f}\``).join(', ')}.`, '');
  }
  lines.push('Check a download with `sha256sum -c --ignore-missing <image>.sha256`. The `.spdx.json` file is an SPDX 2.3 SBOM of every installed package.', '');
  return lines.join('\n');
}
