/**
 * Named defaults and fixed facts of the model, in one place.
 */

/** Guest page size: GPN `n` is guest physical bytes `n * PAGE_SIZE .. n * PAGE_SIZE + 4095`. */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/**
 * Bounce budget per IO thread, in pages: 2048 pages (8 MiB), the limit the reference
 * (OpenVMM's scsi_buffers) uses for unaligned IO.
 */
export const DEFAULT_BOUNCE_PAGES_PER_THREAD = 2048;

/** Linux's limit on iovecs per vectored call (`UIO_MAXIOV`). */
export const IOV_MAX = 1024;
