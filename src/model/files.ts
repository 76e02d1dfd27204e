/**
 * Files and their page caches: memfd (shmem), tmpfile (a disk file system) and memfd with
 * MFD_HUGETLB (hugetlbfs). The page cache holds one reference per cached page.
 */
import { EINVAL, ENOSPC, PAGE_SIZE } from './constants.ts';
import { type Ctx, allocFolio, bug, folio, hugetlbPool } from './kernel.ts';
import type { File, FileKind, Folio, Token } from './types.ts';

export function createFile(k: Ctx, kind: FileKind, hugetlb = 0): File {
  const id = k.s.nextId++;
  const f: File = { id, kind, hugetlb, size: 0, cache: {}, disk: {} };
  k.s.files[id] = f;
  return f;
}

export function pageUnit(f: File): number {
  return f.hugetlb || PAGE_SIZE;
}

/**
 * filemap_fault()/shmem_fault(): the cached folio for `index`, reading it in (or allocating a zero
 * page for a hole) when absent. Null beyond EOF. Small files only: hugetlbfs is handled by
 * hugetlb_fault.
 */
export function pageCacheFolio(k: Ctx, fileId: number, index: number): Folio | null {
  const file = k.s.files[fileId];
  if (!file) bug(`no file ${fileId}`);
  if (index * pageUnit(file) >= file.size) return null;
  const id = file.cache[index];
  if (id !== undefined) return folio(k, id);
  if (file.hugetlb) return null;
  const f = allocFolio(k, 'file', 1, 0, [file.disk[index] ?? 0], file.id, index);
  f.refcount = 1;
  file.cache[index] = f.id;
  return f;
}

/** fallocate(fd, 0, 0, len): grows the file; shmem and hugetlbfs allocate the pages now. */
export function fallocate(k: Ctx, fileId: number, len: number): number {
  const file = k.s.files[fileId];
  if (!file) return -EINVAL;
  const unit = pageUnit(file);
  if (len % unit) return -EINVAL;
  for (let i = 0; i < len / unit; i++) {
    if (file.cache[i] !== undefined) continue;
    if (file.kind === 'hugetlbfs') {
      const pool = hugetlbPool(k, file.hugetlb);
      if (pool.free - pool.resv <= 0) return -ENOSPC;
      pool.free--;
      const f = allocFolio(k, 'file', 1, file.hugetlb, [0], file.id, i);
      f.refcount = 1;
      file.cache[i] = f.id;
    } else if (file.kind === 'shmem') {
      const f = allocFolio(k, 'file', 1, 0, [0], file.id, i);
      f.refcount = 1;
      file.cache[i] = f.id;
    }
  }
  if (len > file.size) file.size = len;
  return 0;
}

/** Reads file contents by 4 KiB page: the page cache if cached, else what is on disk. */
export function fileToken(k: Ctx, file: File, page4k: number): Token {
  const per = pageUnit(file) / PAGE_SIZE;
  const index = Math.floor(page4k / per);
  const id = file.cache[index];
  if (id !== undefined) return folio(k, id).data[0];
  return file.disk[index] ?? 0;
}

/** Writes one 4 KiB page worth of a token into the file through the page cache. */
export function writeFileToken(k: Ctx, file: File, page4k: number, t: Token): void {
  const per = pageUnit(file) / PAGE_SIZE;
  const index = Math.floor(page4k / per);
  let id = file.cache[index];
  if (id === undefined) {
    if (file.hugetlb) {
      file.disk[index] = t;
      return;
    }
    const f = allocFolio(k, 'file', 1, 0, [t], file.id, index);
    f.refcount = 1;
    file.cache[index] = f.id;
    id = f.id;
  }
  folio(k, id).data[0] = t;
  const end = (page4k + 1) * PAGE_SIZE;
  if (end > file.size) file.size = end;
}

/** Drops a file and its page cache (last close of an unlinked file). */
export function dropFile(k: Ctx, fileId: number, put: (id: number) => void): void {
  const file = k.s.files[fileId];
  if (!file) return;
  for (const id of Object.values(file.cache)) {
    const f = folio(k, id);
    f.file = -1;
    put(id);
  }
  delete k.s.files[fileId];
}
