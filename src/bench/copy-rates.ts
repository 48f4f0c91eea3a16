/**
 * The copy cliff on the machine at hand: how fast the bounce copy (a TypedArray `set`, that is
 * glibc's `memmove`, as the executor copies) runs against the distance from source to
 * destination within a page ((destination - source) mod 4096). On CPUs where `rep movsb` is slow
 * for short forward distances, a few of these are an order of magnitude slower than the rest;
 * `copy-placement.ts` keeps bounce copies away from them, and the bench report names them.
 *
 * Each rate is the best of several timed batches of copies between two page-aligned buffers,
 * so a stray interrupt does not make a distance look slow.
 */
import { NativeRegion } from "../native";

/** The distances measured by default: in and out of the slow window, and the other side of the page. */
export const COPY_DISTANCES = [0, 8, 16, 32, 64, 512, 3592, 4088];

export interface CopyRate {
  /** (destination - source) mod 4096. */
  distance: number;
  gibPerSec: number;
}

/** Copy rates of `len`-byte copies at each distance (best of `batches` batches of about 1 ms). */
export function measureCopyRates(distances: readonly number[] = COPY_DISTANCES, len = 65536, batches = 5): CopyRate[] {
  using source = NativeRegion.anonymous(len + 4096, "copy-rate source");
  using target = NativeRegion.anonymous(len + 4096, "copy-rate target");
  source.fill(0, len + 4096, 0x5a);
  target.fill(0, len + 4096, 0);
  const copiesPerBatch = Math.max(4, Math.ceil((1 << 24) / len)); // about 16 MiB a batch
  return distances.map((distance) => {
    const from = source.view(0, len);
    const to = target.view(distance, len);
    to.set(from); // warm
    let best = 0;
    for (let batch = 0; batch < batches; batch++) {
      const started = performance.now();
      for (let i = 0; i < copiesPerBatch; i++) to.set(from);
      const seconds = (performance.now() - started) / 1000;
      best = Math.max(best, (len * copiesPerBatch) / 2 ** 30 / seconds);
    }
    return { distance, gibPerSec: Math.round(best * 10) / 10 };
  });
}

/** The measured distances that run at under half the rate at distance 0: this machine's slow ones. */
export function slowDistances(rates: readonly CopyRate[]): CopyRate[] {
  const base = rates.find((rate) => rate.distance === 0)?.gibPerSec ?? 0;
  return rates.filter((rate) => rate.distance !== 0 && rate.gibPerSec < base / 2);
}
