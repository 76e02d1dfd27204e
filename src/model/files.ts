/**
 * Files and their page caches: memfd (shmem), tmpfile (a disk file system) and memfd with
 * MFD_HUGETLB (hugetlbfs). The page cache holds one reference per cached page.
 */
import { EINVAL, ENOSPC, PAGE_SIZE } from './constants.ts';
import { allocFolio, bug, type Ctx, folio, hugetlbPool, hugetlbPoolAdd } from './kernel.ts';
import { ownTable } from './table.ts';
import { type File, type FileKind, type Folio, newTable, type Token } from './types.ts';

export function createFile(k: Ctx, kind: FileKind, hugetlb = 0): File {
  const id = k.s.nextId++;
  const f: File = { id, kind, hugetlb, size: 0, cache: newTable(), disk: [] };
  ownTable(k.s, 'files').set(id, f);
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
  const file = k.s.files.get(fileId);
  if (!file) bug(`no file ${fileId}`);
  if (index * pageUnit(file) >= file.size) return null;
  const id = file.cache.get(index);
  if (id !== undefined) {
    // shmem_fault() of a page fallocate() left !uptodate: zeroed and marked uptodate now
    const f = folio(k, id);
    if (!f.uptodate) f.uptodate = true;
    return f;
  }
  if (file.hugetlb) return null;
  const f = allocFolio(k, 'file', 1, 0, [diskGet(file, index)], file.id, index);
  f.refcount = 1;
  file.cache.set(index, f.id);
  return f;
}

/** fallocate(fd, 0, 0, len): grows the file; shmem and hugetlbfs allocate the pages now (shmem's
 *  stay !uptodate until written or faulted: shmem_fallocate). */
export function fallocate(k: Ctx, fileId: number, len: number): number {
  const file = k.s.files.get(fileId);
  if (!file) return -EINVAL;
  const unit = pageUnit(file);
  if (len % unit) return -EINVAL;
  for (let i = 0; i < len / unit; i++) {
    if (file.cache.get(i) !== undefined) continue;
    if (file.kind === 'hugetlbfs') {
      const pool = hugetlbPool(k, file.hugetlb);
      if (pool.free - pool.resv <= 0) return -ENOSPC;
      hugetlbPoolAdd(k, file.hugetlb, -1, 0);
      const f = allocFolio(k, 'file', 1, file.hugetlb, [0], file.id, i);
      f.refcount = 1;
      file.cache.set(i, f.id);
    } else if (file.kind === 'shmem') {
      const f = allocFolio(k, 'file', 1, 0, [0], file.id, i);
      f.refcount = 1;
      f.uptodate = false;
      file.cache.set(i, f.id);
    }
  }
  if (len > file.size) file.size = len;
  return 0;
}

/** The on-disk token of 4 KiB page `page` (0 for holes). */
export function diskGet(file: File, page: number): Token {
  let at = 0;
  for (const [t, n] of file.disk) {
    if (page < at + n) return t;
    at += n;
  }
  return 0;
}

/** Sets pages [page, page+n) on disk to token t, keeping the run-length list normalised. */
export function diskSet(file: File, page: number, n: number, t: Token): void {
  const res: Array<[Token, number]> = [];
  const push = (tok: Token, m: number) => {
    if (m <= 0) return;
    const last = res[res.length - 1];
    if (last && last[0] === tok) last[1] += m;
    else res.push([tok, m]);
  };
  let at = 0;
  for (const [tok, m] of file.disk) {
    push(tok, Math.min(at + m, page) - at); // the part before the new range
    at += m;
  }
  push(0, page - at); // a hole up to the new range
  push(t, n);
  at = 0;
  for (const [tok, m] of file.disk) {
    push(tok, at + m - Math.max(at, page + n)); // the part after it
    at += m;
  }
  file.disk = res;
}

/** Reads file contents by 4 KiB page: the page cache if cached, else what is on disk. */
export function fileToken(k: Ctx, file: File, page4k: number): Token {
  const per = pageUnit(file) / PAGE_SIZE;
  const index = Math.floor(page4k / per);
  const id = file.cache.get(index);
  if (id !== undefined) return folio(k, id).dataAt(0);
  return diskGet(file, index);
}

/**
 * Writes n 4 KiB pages of token t at page4k: cached pages are updated in the page cache; for a
 * disk file the rest goes straight to disk (written back), shmem allocates cache pages.
 */
export function writeFileRange(k: Ctx, file: File, page4k: number, n: number, t: Token): void {
  const per = pageUnit(file) / PAGE_SIZE;
  for (const index of file.cache.keys()) {
    if ((index + 1) * per > page4k && index * per < page4k + n) {
      const f = folio(k, file.cache.get(index));
      f.setData(0, t);
      if (!f.uptodate) f.uptodate = true;
    }
  }
  if (file.kind === 'shmem') {
    for (let p = page4k; p < page4k + n; p++) {
      if (file.cache.get(p) !== undefined) continue;
      const f = allocFolio(k, 'file', 1, 0, [t], file.id, p);
      f.refcount = 1;
      file.cache.set(p, f.id);
    }
  } else diskSet(file, Math.floor(page4k / per), Math.ceil(n / per), t);
  const end = (page4k + n) * PAGE_SIZE;
  if (end > file.size) file.size = end;
}

export function writeFileToken(k: Ctx, file: File, page4k: number, t: Token): void {
  writeFileRange(k, file, page4k, 1, t);
}

/** Drops a file and its page cache (last close of an unlinked file). */
export function dropFile(k: Ctx, fileId: number, put: (id: number) => void): void {
  const file = k.s.files.get(fileId);
  if (!file) return;
  for (const index of file.cache.keys()) {
    const id = file.cache.get(index);
    const f = folio(k, id);
    f.file = -1;
    put(id);
  }
  k.s.files.delete(fileId);
}
