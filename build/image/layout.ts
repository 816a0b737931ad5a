// Partition layout and genimage config: pure functions, so they are tested without tools.

export const MiB = 1024 * 1024;
export const ALIGN = 4 * MiB;
export const BOOT_OFFSET = 4 * MiB;
/** Debian's raspi images: FAT from 4 MiB to 512 MiB. */
export const BOOT_SIZE = 508 * MiB;
export const BOOT_LABEL = 'RASPIFIRM';
export const ROOT_LABEL = 'RASPIROOT';

export function alignUp(n: number, to = ALIGN): number {
  return Math.ceil(n / to) * to;
}

export interface RootSizing {
  /** Bytes the root tree uses on disk. */
  usedBytes: number;
  /** Files, directories and links in the root tree. */
  inodes: number;
  headroomPercent: number;
  headroomMiB: number;
}

/**
 * The root file system: content plus headroom, plus room for ext4's own metadata
 * (journal, inode tables), aligned. The first boot grows it to fill the card.
 */
export function rootSize(s: RootSizing): { bytes: number; inodes: number } {
  const inodes = Math.ceil(s.inodes * 1.3) + 16_384;
  const metadata = inodes * 256 + 64 * MiB;
  const bytes = alignUp(s.usedBytes * (1 + s.headroomPercent / 100) + s.headroomMiB * MiB + metadata);
  return { bytes, inodes };
}

export interface Layout {
  boot: { offset: number; size: number };
  root: { offset: number; size: number };
  total: number;
}

export function layout(rootBytes: number): Layout {
  const rootOffset = alignUp(BOOT_OFFSET + BOOT_SIZE);
  return {
    boot: { offset: BOOT_OFFSET, size: BOOT_SIZE },
    root: { offset: rootOffset, size: rootBytes },
    total: rootOffset + rootBytes,
  };
}

/** A 32-bit number from a digest, for the MBR disk signature and the FAT volume id. */
export function idFromHex(hex: string, salt: number): string {
  const n = (parseInt(hex.slice(salt * 8, salt * 8 + 8), 16) | 1) >>> 0;
  return n.toString(16).padStart(8, '0');
}

/** A UUID (v4 form) from a digest, so the same inputs make the same file system. */
export function uuidFromHex(hex: string): string {
  const h = hex.padEnd(32, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * genimage's config: an MBR with a FAT32 firmware partition and an ext4 root. `partitionImage`
 * is given to both partitions; when it is empty, genimage writes the table only.
 */
export function genimageConfig(imageName: string, l: Layout, diskSignature: string, partitionImage: string): string {
  return `# Written by pihub: MBR with a FAT32 firmware partition and an ext4 root, filled in place afterwards.
image ${imageName} {
  hdimage {
    partition-table-type = "mbr"
    disk-signature = 0x${diskSignature}
  }
  partition firmware {
    partition-type = 0xC
    bootable = true
    image = "${partitionImage}"
    offset = ${l.boot.offset}
    size = ${l.boot.size}
  }
  partition root {
    partition-type = 0x83
    image = "${partitionImage}"
    offset = ${l.root.offset}
    size = ${l.root.size}
  }
}
`;
}
