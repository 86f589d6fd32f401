// Latency CDFs drawn by gnuplot (Debian's gnuplot-nox or gnuplot) into a PNG image.
#ifndef FAULTLINE_BENCH_CDF_PLOT_H_
#define FAULTLINE_BENCH_CDF_PLOT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace faultline_bench {

struct CdfCurve {
  std::string title;
  const std::vector<uint32_t>* sorted_ns;  // REQUIRES: sorted, not empty
  int color;      // curves of one mode share a colour (gnuplot's linecolor index, from 1)
  int dash_type;  // ... and differ by dash type (from 1, solid)
};

// Draws one curve per entry (latency in microseconds, log scale, against the fraction of faults
// at or below it) into `png_path`. The data goes to gnuplot on its standard input, so no
// temporary file is made. Returns false with the reason in *why: gnuplot not installed, or
// gnuplot failed (its own message is on stderr).
bool PlotLatencyCdf(const std::vector<CdfCurve>& curves, const std::string& title,
                    const std::string& png_path, std::string* why);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_CDF_PLOT_H_
