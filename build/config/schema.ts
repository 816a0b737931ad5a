import { z } from 'zod';

/**
 * Every default in one place. A config file, overlays and --set only say what differs;
 * the merged result is validated by `ConfigSchema`.
 */
export const DEFAULTS = {
  name: 'pihub',
  hostname: 'pihub',
  base: {
    suite: 'trixie',
    architecture: 'arm64',
    mirror: 'http://deb.debian.org/debian',
    components: ['main', 'non-free-firmware'],
  },
  users: [],
  hub: {
    port: 8888,
    admin_group: 'jupyter_admin',
    users_group: 'jupyter_users',
    proxy: 'apt',
    npm_registry: null,
    idle_timeout_minutes: 60,
    https: {
      mode: 'off',
      cert_file: null,
      key_file: null,
    },
  },
  locale: 'en_US.UTF-8',
  timezone: 'Etc/UTC',
  keyboard: {
    layout: 'us',
    model: 'pc105',
    variant: '',
    options: '',
  },
  wifi: null,
  ssh: {
    enabled: false,
    password_auth: 'auto',
  },
  image: {
    headroom_percent: 0,
    headroom_mib: 128,
    compression: 'zstd',
  },
  apt_proxy: null,
  overlays: [],
} as const;

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

const HOSTNAME_RULE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

const url = z.string().regex(/^(https?|file):\/\/\S+$/, { error: 'must be a URL such as `http://host:3142`' });

const CRYPT_HASH = /^\$(y|gy|7|6|5|2b|2y|1)\$[./A-Za-z0-9$=,]+$/;

export const UserSchema = z
  .strictObject({
    name: userName,
    password: z.string().min(1, { error: 'must not be empty' }).optional(),
    password_hash: z
      .string()
      .regex(CRYPT_HASH, {
        error: 'must be a crypt(3) hash such as the output of `mkpasswd -m yescrypt` or `openssl passwd -6`',
      })
      .optional(),
    admin: z.boolean().default(false),
    ssh_authorized_keys: z
      .array(
        z.string().regex(/^(ssh-|ecdsa-|sk-)[a-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$/, {
          error: 'must be one public key line such as `ssh-ed25519 AAAA… me@laptop`',
        }),
      )
      .default([]),
  })
  .superRefine((u, ctx) => {
    const given = Number(u.password !== undefined) + Number(u.password_hash !== undefined);
    if (given !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          given === 0
            ? `user \`${u.name}\` needs \`password\` or \`password_hash\` (no account gets an empty or default password)`
            : `user \`${u.name}\` has both \`password\` and \`password_hash\`; keep one`,
      });
    }
  });

const HubSchema = z.strictObject({
  port: z
    .number({ error: 'must be a port number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be a TCP port from 1 to 65535' })
    .max(65535, { error: 'must be a TCP port from 1 to 65535' }),
  admin_group: groupName,
  users_group: groupName,
  proxy: z.enum(['apt', 'npm'], { error: 'must be `apt` (Debian\'s package) or `npm` (npm install -g)' }),
  npm_registry: url.nullable(),
  idle_timeout_minutes: z
    .number()
    .int()
    .min(0, { error: 'must be 0 (never shut idle servers down) or a number of minutes' }),
  https: z.strictObject({
    mode: z.enum(['off', 'self-signed', 'files'], { error: 'must be `off`, `self-signed` or `files`' }),
    cert_file: z.string().nullable(),
    key_file: z.string().nullable(),
  }),
});

export const ConfigSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
      error: 'must be a file-name-safe name: letters, digits, `.`, `_` or `-`',
    }),
    hostname: z.string().regex(HOSTNAME_RULE, {
      error: 'must be a valid host name: letters, digits and `-`, 1 to 63 characters, not starting or ending with `-`',
    }),
    base: z.strictObject({
      suite: z.enum(['trixie'], { error: 'must be `trixie` (Debian 13); other bases are not supported yet' }),
      architecture: z.enum(['arm64'], { error: 'must be `arm64` (Pi 3, 3+, 4, 400, Zero 2 W)' }),
      mirror: url,
      components: z.array(z.string().regex(/^[a-z-]+$/)).min(1),
    }),
    users: z.array(UserSchema).superRefine((users, ctx) => {
      const seen = new Set<string>();
      users.forEach((u, i) => {
        if (seen.has(u.name)) {
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate user name \`${u.name}\`` });
        }
        seen.add(u.name);
      });
    }),
    hub: HubSchema,
    locale: z.string().regex(/^[a-zA-Z]{2,3}(_[A-Z]{2})?(\.UTF-8)?(@[a-z]+)?$|^C\.UTF-8$/, {
      error: 'must be a locale such as `en_GB.UTF-8`',
    }),
    timezone: z.string().regex(/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, {
      error: 'must be a time zone such as `Europe/London`',
    }),
    keyboard: z.strictObject({
      layout: z.string().regex(/^[a-z]{2,}(,[a-z]{2,})*$/, { error: 'must be an XKB layout such as `gb` or `de`' }),
      model: z.string().regex(/^[a-z0-9_]+$/),
      variant: z.string().regex(/^[a-z0-9_,-]*$/),
      options: z.string().regex(/^[a-z0-9_:,-]*$/),
    }),
    wifi: z
      .strictObject({
        country: z.string().regex(/^[A-Z]{2}$/, { error: 'must be a two-letter country code such as `GB`' }),
        ssid: z.string().min(1).max(32, { error: 'must be 1 to 32 characters' }),
        psk: z
          .string()
          .regex(/^([ -~]{8,63}|[0-9a-fA-F]{64})$/, {
            error: 'must be a WPA passphrase of 8 to 63 printable characters (or 64 hex digits)',
          }),
      })
      .nullable(),
    ssh: z.strictObject({
      enabled: z.boolean(),
      password_auth: z.union([z.boolean(), z.literal('auto')], {
        error: 'must be true, false or `auto` (off when any user has ssh_authorized_keys)',
      }),
    }),
    image: z.strictObject({
      headroom_percent: z.number().min(0).max(400),
      headroom_mib: z.number().int().min(0),
      compression: z.enum(['xz', 'zstd', 'gzip', 'none'], { error: 'must be one of `xz`, `zstd`, `gzip`, `none`' }),
    }),
    apt_proxy: url.nullable(),
    overlays: z.array(z.string().min(1)),
  })
  .superRefine((c, ctx) => {
    if (c.hub.https.mode === 'files' && (!c.hub.https.cert_file || !c.hub.https.key_file)) {
      ctx.addIssue({
        code: 'custom',
        path: ['hub', 'https'],
        message: 'mode `files` needs `cert_file` and `key_file` (paths on the build machine)',
      });
    }
    for (const [i, u] of c.users.entries()) {
      if (u.name === c.hub.admin_group || u.name === c.hub.users_group) {
        ctx.addIssue({
          code: 'custom',
          path: ['users', i, 'name'],
          message: `\`${u.name}\` is also a hub group name; a user and a group of one name would clash`,
        });
      }
    }
  });

export type BuildConfig = z.infer<typeof ConfigSchema>;
export type UserConfig = z.infer<typeof UserSchema>;
