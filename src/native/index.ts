/**
 * The native boundary, as the rest of the library sees it: typed wrappers, owners of native
 * memory, errno. Nothing outside `src/native/` imports `bun:ffi`; everything goes through here.
 */
export { errnoName, OsError, EINTR, EINVAL } from "./errno";
export { IovecArray } from "./iovec";
export { monotonicNs } from "./clock";
export { tryLockRange, unlockRange } from "./file-locks";
export { CHUNK_BYTES, NativeRegion } from "./region";
export { IoUring, IORING_OP_READV, IORING_OP_WRITEV } from "./uring";
export {
  allocateFd,
  allocateFdOnce,
  cachedPages,
  dropCachedPages,
  openTemporaryFile,
  blockDeviceLogicalSize,
  blockDeviceSize,
  closeFd,
  createMemfd,
  fileFlags,
  fileIdentity,
  setFileFlags,
  setParentDeathSignal,
  O_NONBLOCK,
  O_NOFOLLOW,
  fsyncFd,
  HUGE_PAGE_SIZE,
  ioCounters,
  keepBasePages,
  nextData,
  openFile,
  physicalFrames,
  physicalRuns,
  populateForRead,
  runLengths,
  splitHugePages,
  preadv,
  preadvOnce,
  pwritevOnce,
  IO_BYTES_READ,
  IO_BYTES_WRITTEN,
  IO_PREADV,
  IO_PWRITEV,
  IO_SQES,
  statx,
  processCpuNs,
  threadCpuNs,
  truncateFd,
  O_CREAT,
  O_DIRECT,
  O_DSYNC,
  O_EXCL,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  RWF_DSYNC,
  type Address,
  type FileStatus,
  type FileType,
} from "./os";
