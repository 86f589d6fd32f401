// Fills 600 MiB of long arrays (4800 arrays of 128 KiB, below G1's humongous size), keeps every
// array alive while a quarter of them is replaced twice over (garbage for the collector to find
// among live data it must mark and move), re-reads everything twice, and prints one checksum per
// pass. Exits 1 at the first wrong value. Output is the same on every run.
public class Fill {
  static final int ARRAYS = 4800;
  static final int LONGS = 16384;

  static long value(int array, int index, int generation) {
    long x = ((long) array * LONGS + index) * 0x9E3779B97F4A7C15L + generation;
    return x ^ (x >>> 29);
  }

  static long[] make(int array, int generation) {
    long[] a = new long[LONGS];
    for (int j = 0; j < LONGS; j++) a[j] = value(array, j, generation);
    return a;
  }

  public static void main(String[] args) {
    long[][] arrays = new long[ARRAYS][];
    int[] generation = new int[ARRAYS];
    for (int i = 0; i < ARRAYS; i++) arrays[i] = make(i, 0);
    for (int round = 1; round <= 2; round++) {
      for (int i = round; i < ARRAYS; i += 4) {
        generation[i] = round;
        arrays[i] = make(i, round);
      }
    }
    for (int pass = 0; pass < 2; pass++) {
      long sum = 0;
      for (int i = 0; i < ARRAYS; i++) {
        long[] a = arrays[i];
        for (int j = 0; j < LONGS; j++) {
          if (a[j] != value(i, j, generation[i])) {
            System.out.println("BAD array " + i + " index " + j);
            System.exit(1);
          }
          sum += a[j] * (j | 1);
        }
      }
      System.out.println("pass " + pass + " sum " + sum);
    }
  }
}
