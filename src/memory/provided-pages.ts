/**
 * ProvidedPages: which pages of a guest image the filesystem has been asked to provide, so that
 * storing into them through the mapping can never fault.
 *
 * A guest image is usually sparse. A store into a hole of a `MAP_SHARED` mapping makes the
 * filesystem allocate the page then and there; when it cannot (a full tmpfs or disk), the kernel
 * answers the store with SIGBUS, which kills the process (and a direct read into such a page
 * fails with a bare EFAULT). So before the first store into a page, bounce-bench asks for it
 * with `fallocate`, which can say ENOSPC, and remembers that it did:
 *
 *   chunk (1 GiB of pages) -> bitmap, one bit a page, made on first use
 *
 * so asking again costs a bit test per page, and a 16 TiB sparse image needs no memory until it
 * is touched. A filesystem that cannot fallocate (EOPNOTSUPP) is taken at its word that it
 * needs no help (its pages are allocated on store as before).
 *
 * If another process truncates the image under a run, pages past the new end are gone whatever
 * was provided: a store there still faults (SIGBUS), as with any mapped file (README, "Safety").
 */
import { PAGE_SIZE } from "../base/constants";
import { OsError, allocateFdOnce } from "../native";

const PAGES_PER_CHUNK = 2 ** 18;
const EOPNOTSUPP = 95;

export class ProvidedPages {
  readonly #chunks: (Uint8Array | undefined)[];

  /**
   * @param fd the image's descriptor (owned by the mapping; valid while it is mapped)
   * @param path for messages
   */
  constructor(
    readonly fd: number,
    readonly path: string,
    pageCount: number,
  ) {
    this.#chunks = new Array(Math.ceil(pageCount / PAGES_PER_CHUNK));
  }

  /** Makes sure pages `first .. first+count-1` are provided; ENOSPC (or any fallocate error) as an `OsError` naming the image. */
  ensure(first: number, count: number): void {
    let page = first;
    const end = first + count;
    while (page < end) {
      if (this.#has(page)) {
        page++;
        continue;
      }
      let runEnd = page + 1;
      while (runEnd < end && !this.#has(runEnd)) runEnd++;
      const errno = allocateFdOnce(this.fd, page * PAGE_SIZE, (runEnd - page) * PAGE_SIZE);
      if (errno !== 0 && errno !== EOPNOTSUPP) {
        throw new OsError(errno, "fallocate", `guest image ${this.path}, pages ${page}..${runEnd - 1}`, "the filesystem holding the guest image cannot provide them");
      }
      for (let p = page; p < runEnd; p++) this.#mark(p);
      page = runEnd;
    }
  }

  #has(page: number): boolean {
    const chunk = this.#chunks[Math.floor(page / PAGES_PER_CHUNK)];
    if (chunk === undefined) return false;
    const bit = page % PAGES_PER_CHUNK;
    return (chunk[bit >>> 3]! & (1 << (bit & 7))) !== 0;
  }

  #mark(page: number): void {
    const index = Math.floor(page / PAGES_PER_CHUNK);
    const chunk = (this.#chunks[index] ??= new Uint8Array(PAGES_PER_CHUNK / 8));
    const bit = page % PAGES_PER_CHUNK;
    chunk[bit >>> 3]! |= 1 << (bit & 7);
  }
}
