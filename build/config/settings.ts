// Every config key, declared once: its type, default and meaning, and what pihub must know
// about it (a secret? a file on the build machine? a URL that may carry a password? how stages
// see it). The schema, the defaults, secret handling, cache-key inputs, stage values and the
// docs/configuration.md's settings table are all derived from this tree (mkosi's SETTINGS, in spirit),
// through declared.ts. This file holds declarations only: it enters a stage's cache key by the
// declarations of the keys the stage reads (plan/keys.ts), not as code (core/digest.ts), so a
// new setting rebuilds only the stages that read it.
import { z } from 'zod';
import { BUILT_ARCHITECTURES, BUILT_SUITES } from './architectures.ts';
import { aptCredentialsProblem } from './urls.ts';
import { leaf, list, optionalSection, section } from './nodes.ts';

/** A kernel console as `console=` takes it (also a base profile's `boot.consoles`). */
export const CONSOLE = z.string().regex(/^[a-zA-Z0-9]+(,[0-9]+)?$/, { error: 'must be a console such as `ttyAMA0,115200` or `tty0`' });

// ---- the rules values must follow -------------------------------------------------------

/** Accounts a Debian base system already has, or that must never be a hub user. */
export const RESERVED_USER_NAMES = new Set([
  'root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy',
  'www-data', 'backup', 'list', 'irc', '_apt', 'nobody', 'nogroup', 'messagebus', 'sshd', 'polkitd',
  'systemd-network', 'systemd-resolve', 'systemd-timesync', 'systemd-journal', 'systemd-coredump',
  'tss', 'dnsmasq', 'avahi', 'sudo', 'adm', 'users', 'staff', 'video', 'audio', 'plugdev', 'netdev',
  'dialout', 'input', 'render', 'kvm', 'disk', 'tty', 'shadow', 'utmp', 'operator', 'src',
]);

const NAME_RULE = /^[a-z_][a-z0-9_-]{0,31}$/;
const nameMessage = (what: string) =>
  `must be a ${what} name: a lowercase letter or \`_\` first, then up to 31 lowercase letters, digits, \`_\` or \`-\``;

const userName = z
  .string()
  .regex(NAME_RULE, { error: nameMessage('user') })
  .refine((n) => !RESERVED_USER_NAMES.has(n), {
    error: (issue) => `\`${String(issue.input)}\` is a system account or group of Debian; choose another name`,
  });
const groupName = z.string().regex(NAME_RULE, { error: nameMessage('group') });
const url = z.string().regex(/^(https?|file):\/\/\S+$/, { error: 'must be a URL such as `http://host:3142`' });
/** A URL apt uses: its credentials, if any, must fit apt's auth.conf. */
const aptUrl = url.superRefine((u, ctx) => {
  const problem = aptCredentialsProblem(u);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const CRYPT_HASH = /^\$(y|gy|7|6|5|2b|2y|1)\$[./A-Za-z0-9$=,]+$/;
// mkpasswd reads one line and hashes it as a C string: it would silently drop everything from a
// line break or NUL on, and libxcrypt refuses passphrases of 512 bytes or more.
const plainPassword = z
  .string()
  .min(1, { error: 'must not be empty' })
  .refine((s) => !/[\n\r\0]/.test(s), {
    error: 'must not contain a line break or a NUL character (only the part before it would become the password); give the password on one line',
  })
  .refine((s) => Buffer.byteLength(s, 'utf8') <= 511, { error: 'must be at most 511 bytes long (crypt(3)\'s limit)' });
const port = z
  .number({ error: 'must be a port number' })
  .int({ error: 'must be a whole number' })
  .min(1, { error: 'must be a TCP port from 1 to 65535' })
  .max(65535, { error: 'must be a TCP port from 1 to 65535' });

// ---- the settings --------------------------------------------------------------------------

const USER = section(
  {
    name: leaf(userName),
    password: leaf(plainPassword, { optional: true, secret: true, hashedAs: 'password_hash' }),
    password_hash: leaf(
      z.string().regex(CRYPT_HASH, { error: 'must be a crypt(3) hash such as the output of `mkpasswd -m yescrypt` or `openssl passwd -6`' }),
      { optional: true, secret: true },
    ),
    admin: leaf(z.boolean(), { default: false }),
    ssh_authorized_keys: leaf(
      z.array(z.string().regex(/^(ssh-|ecdsa-|sk-)[a-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$/, { error: 'must be one public key line such as `ssh-ed25519 AAAA… me@laptop`' })),
      { default: [] },
    ),
  },
  {
    refine: (u: { name: string; password?: string; password_hash?: string }, ctx) => {
      const given = Number(u.password !== undefined) + Number(u.password_hash !== undefined);
      if (given !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: [],
          message: given === 0
            ? `user \`${u.name}\` needs \`password\` or \`password_hash\` (no account gets an empty or default password)`
            : `user \`${u.name}\` has both \`password\` and \`password_hash\`; keep one`,
        });
      }
    },
  },
);

export const SETTINGS = section({
  name: leaf(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'must be a file-name-safe name: letters, digits, `.`, `_` or `-`' }), {
    default: 'pihub',
    doc: 'image file name prefix',
    engine: 'file names',
  }),
  hostname: leaf(
    z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, {
      error: 'must be a valid host name: letters, digits and `-`, 1 to 63 characters, not starting or ending with `-`',
    }),
    { default: 'pihub', doc: 'host name (also in `/etc/hosts`)' },
  ),
  base: section({
    profile: leaf(z.string().min(1, { error: 'must be the name of a base profile such as `debian-trixie-arm64` (see `pihub bases`) or the path of a profile' }), {
      default: 'debian-trixie-arm64',
      doc: 'base profile: NAME of bases/NAME.yaml (`base: NAME` for short; see `pihub bases`), or the path of your own profile (.yaml); `base.mirror` and `base.components` override its own',
      engine: 'every stage (the base)',
    }),
    suite: leaf(z.enum(BUILT_SUITES, { error: 'must be `trixie` (Debian 13); choose a base profile with `base: NAME` (see `pihub bases`)' }), { default: 'trixie', doc: 'Debian suite (the base profile\'s; a different one is refused)', engine: 'every stage (the base)' }),
    architecture: leaf(z.enum(BUILT_ARCHITECTURES, { error: `must be ${BUILT_ARCHITECTURES.map((a) => `\`${a}\``).join(' or ')}; choose a base profile with \`base: NAME\` (see \`pihub bases\`)` }), { default: 'arm64', doc: 'Debian architecture (the base profile\'s; a different one is refused)', engine: 'every stage (the base)' }),
    mirror: leaf(aptUrl, { default: 'http://deb.debian.org/debian', url: true, doc: 'Debian archive to build from (also the image\'s apt source, without any `user:password@`: apt on the card has no credentials; see *Secrets*)', engine: 'every stage (the base)' }),
    components: leaf(z.array(z.string().regex(/^[a-z-]+$/)).min(1), { default: ['main', 'non-free-firmware'], doc: 'archive components', engine: 'every stage (the base)' }),
    consoles: leaf(z.array(CONSOLE).min(1), {
      default: ['ttyS1,115200', 'ttyAMA10,115200', 'tty0'],
      doc: 'the kernel\'s consoles (cmdline.txt\'s `console=`), the last gets the boot messages; the base profile\'s `boot.consoles` by default',
    }),
  }),
  users: list(USER, {
    doc: 'accounts: `name`, `password` or `password_hash`, `admin`, `ssh_authorized_keys`',
    refine: (users: Array<{ name: string }>, ctx) => {
      const seen = new Set<string>();
      users.forEach((u, i) => {
        if (seen.has(u.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate user name \`${u.name}\`` });
        seen.add(u.name);
      });
    },
  }),
  hub: section({
    port: leaf(port, { default: 8888, doc: 'the hub\'s port (`bind_url`)' }),
    admin_group: leaf(groupName, { default: 'jupyter_admin', doc: 'Unix group of hub admins (created if missing)' }),
    users_group: leaf(groupName, { default: 'jupyter_users', doc: 'Unix group of hub users (created if missing)' }),
    proxy: leaf(z.enum(['apt', 'npm'], { error: 'must be `apt` (Debian\'s package) or `npm` (npm install -g)' }), {
      default: 'apt',
      doc: 'configurable-http-proxy from `apt` or `npm`',
    }),
    npm_registry: leaf(url.nullable(), { default: null, url: true, doc: 'npm registry for `hub.proxy: npm` (default registry.npmjs.org); a `user:password@` in it goes to npm in a root-only file (see *Secrets*)' }),
    memory_limit_mib: leaf(z.union([z.literal('auto'), z.number().int().min(128, { error: 'must be `auto` or a number of MiB, at least 128' })], { error: 'must be `auto` or a number of MiB, at least 128' }), {
      default: 'auto',
      doc: 'memory limit of each person\'s server (JupyterLab, kernels, terminals) in MiB; `auto`: from the Pi\'s memory at each start of the hub (docs/memory.md)',
    }),
    max_servers: leaf(z.union([z.literal('auto'), z.number().int().min(1, { error: 'must be `auto` or a whole number, at least 1' })], { error: 'must be `auto` or a whole number, at least 1' }), {
      default: 'auto',
      doc: 'how many people\'s servers run at once before the next person sees "This Pi is full"; `auto`: from the Pi\'s memory',
    }),
    idle_timeout_minutes: leaf(z.number().int().min(0, { error: 'must be 0 (never shut idle servers down) or a number of minutes' }), {
      default: 60,
      doc: 'stop idle kernels and servers after this long; `0` never',
    }),
    https: section({
      mode: leaf(z.enum(['off', 'self-signed', 'files'], { error: 'must be `off`, `self-signed` or `files`' }), {
        default: 'off',
        doc: '`off`, `self-signed` or `files` (see the `https` overlay)',
      }),
      cert_file: leaf(z.string().nullable(), { default: null, file: true, pem: 'certificate', doc: 'certificate for `files` mode' }),
      key_file: leaf(z.string().nullable(), { default: null, file: true, pem: 'private key', certificate: 'cert_file', doc: 'its private key' }),
    }),
  }),
  locale: leaf(z.string().regex(/^[a-zA-Z]{2,3}(_[A-Z]{2})?(\.UTF-8)?(@[a-z]+)?$|^C\.UTF-8$/, { error: 'must be a locale such as `en_GB.UTF-8`' }), {
    default: 'en_US.UTF-8',
    doc: 'system locale',
  }),
  timezone: leaf(z.string().regex(/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, { error: 'must be a time zone such as `Europe/London`' }), {
    default: 'Etc/UTC',
    doc: 'time zone, e.g. `Europe/London`',
  }),
  keyboard: section({
    layout: leaf(z.string().regex(/^[a-z]{2,}(,[a-z]{2,})*$/, { error: 'must be an XKB layout such as `gb` or `de`' }), { default: 'us', doc: 'console keyboard layout' }),
    model: leaf(z.string().regex(/^[a-z0-9_]+$/), { default: 'pc105', doc: 'keyboard model' }),
    variant: leaf(z.string().regex(/^[a-z0-9_,-]*$/), { default: '', doc: 'layout variant' }),
    options: leaf(z.string().regex(/^[a-z0-9_:,-]*$/), { default: '', doc: 'XKB options' }),
  }),
  wifi: optionalSection(
    {
      country: leaf(z.string().regex(/^[A-Z]{2}$/, { error: 'must be a two-letter country code such as `GB`' })),
      // Any bytes are safe: the image writes the SSID in hex. 32 bytes is 802.11's limit.
      ssid: leaf(
        z
          .string()
          .refine((s) => s.length > 0 && Buffer.byteLength(s, 'utf8') <= 32, {
            error: 'must be 1 to 32 bytes long (in UTF-8; letters outside ASCII take 2 to 4 bytes each)',
          })
          .refine((s) => !s.includes('\0'), { error: 'must not contain a NUL character' }),
      ),
      psk: leaf(z.string().regex(/^([ -~]{8,63}|[0-9a-fA-F]{64})$/, { error: 'must be a WPA passphrase of 8 to 63 printable characters (or 64 hex digits)' }), {
        secret: true,
      }),
    },
    { doc: '`{country, ssid, psk}`: `ssid` any 1 to 32 bytes (written in hex, so any name is safe), `psk` a passphrase of 8 to 63 printable characters (stored only as its WPA hash) or the 64-hex-digit PSK itself' },
  ),
  ssh: section({
    enabled: leaf(z.boolean(), { default: false, doc: 'start the SSH server' }),
    password_auth: leaf(z.union([z.boolean(), z.literal('auto')], { error: 'must be true, false or `auto` (off when any user has ssh_authorized_keys)' }), {
      default: 'auto',
      doc: 'password logins over SSH; `auto` = off when any user has keys',
    }),
  }),
  updates: section({
    automatic: leaf(z.enum(['security', 'all', 'off'], { error: 'must be `security` (Debian\'s security fixes), `all` (also stable point releases) or `off`' }), {
      default: 'security',
      doc: 'updates the card installs on its own: `security` (Debian\'s security updates), `all` (also stable point releases and `-updates`) or `off`',
    }),
  }),
  backup: section({
    drive_label: leaf(z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, { error: 'must be a file system label of 1 to 16 letters, digits, `_` or `-` (ext4 takes 16, exFAT 15, FAT 11)' }), {
      default: 'PIHUB-BACKUP',
      doc: 'the label of the USB drive the card backs up to (`sudo pihub-backup setup` starts the backups; see docs/backup.md)',
    }),
    sftp: leaf(z.string().regex(/^sftp:\/\/[a-z_][a-z0-9_.-]*@[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?\/[^\s'"\\]+$/, { error: 'must be an SFTP address such as `sftp://pihub@nas.local/backups/kitchen-pi` (a login name, a host name or address, an optional `:port`, then the folder)' }).nullable(), {
      default: null,
      doc: 'a network target too: a folder on a NAS or another computer that the card also backs up to over SFTP, as `sftp://LOGIN@HOST[:PORT]/FOLDER` (a folder in LOGIN\'s home; `//FOLDER` for a path from the root); the card logs in with a key made from the backup\'s secret (`sudo pihub-backup setup` shows it; see docs/backup.md)',
    }),
    time: leaf(z.string().regex(/^([01]?[0-9]|2[0-3]):[0-5][0-9]$/, { error: 'must be a time of day as HH:MM, such as `03:00`' }), {
      default: '03:00',
      doc: 'when the nightly backup starts (within half an hour after; a Pi that was off then backs up soon after it starts)',
    }),
    keep_daily: leaf(z.number().int().min(0).max(1000), { default: 7, doc: 'snapshots kept: the last of each of this many days' }),
    keep_weekly: leaf(z.number().int().min(0).max(1000), { default: 5, doc: '… of this many weeks' }),
    keep_monthly: leaf(z.number().int().min(0).max(1000), { default: 12, doc: '… of this many months' }),
  }, {
    refine: (b: { keep_daily: number; keep_weekly: number; keep_monthly: number }, ctx) => {
      if (b.keep_daily + b.keep_weekly + b.keep_monthly === 0) ctx.addIssue({ code: 'custom', path: ['keep_daily'], message: 'keep at least one snapshot: `keep_daily`, `keep_weekly` and `keep_monthly` are all 0' });
    },
  }),
  image: section({
    compression: leaf(z.enum(['xz', 'zstd', 'gzip', 'none'], { error: 'must be one of `xz`, `zstd`, `gzip`, `none`' }), {
      default: 'zstd',
      engine: 'export',
      doc: '`zstd` (level 1, seconds: for a card flashed right away), `xz` (smallest, minutes: releases use it), `gzip` or `none`; a `.bmap` block map is written beside the image either way',
    }),
    headroom_percent: leaf(z.number().min(0).max(400), { default: 0, engine: 'export', doc: 'extra free space in the root file system, in percent of its content (the first boot grows it to the card anyway)' }),
    headroom_mib: leaf(z.number().int().min(0), { default: 128, engine: 'export', doc: 'and in MiB on top: room for the first boot before the grow' }),
  }),
  apt_proxy: leaf(aptUrl.nullable(), { default: null, url: true, engine: 'apt during the build', doc: 'HTTP proxy for apt during the build (e.g. apt-cacher-ng); never kept in the image; a `user:password@` in it goes to apt in a root-only file (see *Secrets*)' }),
  overlays: leaf(z.array(z.string().min(1)), { default: [], engine: 'the build (one stage each)', doc: 'overlays to apply (see below): names, or folders relative to the config file; in the config file or with `--overlay`, not with `--set`' }),
}, {
  // Rules between keys.
  refine: (c: { hub: { admin_group: string; users_group: string; https: { mode: string; cert_file: string | null; key_file: string | null } }; users: Array<{ name: string }> }, ctx) => {
    if (c.hub.https.mode === 'files' && (!c.hub.https.cert_file || !c.hub.https.key_file)) {
      ctx.addIssue({ code: 'custom', path: ['hub', 'https'], message: 'mode `files` needs `cert_file` and `key_file` (paths on the build machine)' });
    }
    for (const [i, u] of c.users.entries()) {
      if (u.name === c.hub.admin_group || u.name === c.hub.users_group) {
        ctx.addIssue({ code: 'custom', path: ['users', i, 'name'], message: `\`${u.name}\` is also a hub group name; a user and a group of one name would clash` });
      }
    }
  },
});
