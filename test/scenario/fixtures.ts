/** Shared scenario texts for the scenario tests (not a test file itself). */

/** Every statement form at least once; passes on v6.2. */
export const ALL_FORMS = `# every statement form
scenario "all forms \\"quoted\\""
outcome v6.2 pass
machine thp=on huge-zeropage=on zeropage=on hugetlb=2M:4+1G:1 swap=on gup-test=on soft-dirty=on memlock=8M ipc-lock=on
process A

A: mmap buf anon private rw 16K
A: mmap big anon private rw 2M thp
A: mmap small anon private rw 8K nothp
A: mmap hbuf anon hugetlb(2M) private rw 2M
A: memfd F 8K
A: memfd H 2M hugetlb(2M)
A: tmpfile T 8K
A: mmap fmap file F private rw 8K
A: mmap fshared file F shared r 4K offset 4K
A: mmap hmap file H shared rw 2M
A: mmap m2 memfd private rw 4K
A: mmap m3 memfd hugetlb(2M) shared rw 2M
A: mmap t2 tmpfile private r 4K
A: mmap dst anon private none 8K
A: mmap noacc anon private none 4K
A: store buf 0x11
A: memset buf+4K 0x12
A: load big
A: load fmap[:4K]
A: read buf[4K:12K] -> r
expect r == 0x12*4K, 0x11
expect r != 0x99
A: pwrite F 0x33
A: pwrite T[4K:] 0x44
A: pread T -> t
expect t == 0x00*4K, 0x44*4K
A: mprotect small r
A: mprotect small rw
A: madvise small hugepage
A: madvise small nohugepage
A: madvise small dontfork
A: madvise small dofork
A: store small 0x01
A: madvise small pageout
expect A:small swapped
A: madvise small dontneed
A: madvise big collapse
A: mremap buf[:8K] -> dst
A: pipe P
A: vmsplice buf[8K:] -> P
A: read P 4K -> p1
A: read P -> p2
A: close P
A: pin dst ro longterm -> pn
expect pin pn matches A:dst
expect pin pn == 0x11*4K, 0x12*4K
A: unpin pn
A: pin dst rw longterm fast -> pw
A: unpin pw
A: io_uring register small -> ring
A: io_uring write_fixed ring -> T+4K
A: io_uring unregister ring
A: vfio map small ro -> d1
A: vfio unmap d1
A: odirect read T -> small
A: odirect write small[:4K] -> T[:4K]
A: clear_refs softdirty
A: fork B
expect A:dst same-page B:dst
expect A:dst different-page A:small
expect A:dst+4K not exclusive
expect A:dst present
expect A:dst refcount >= 1
expect A:dst mapcount == 2
expect A:dst pincount == 0
expect A VmPin == 0
expect A VmLck <= 0
expect user-locked == 0
expect B:dst == 0x11*4K, 0x12*4K
B: store noacc 0x55 ! SIGSEGV
B: exit 3
A: wait B
A: close T
A: store hbuf 0x07
expect A:hbuf thp
`;
