# A hash of 500 k string keys to array references (about 220 MiB in Perl's structures), filled
# from a fixed LCG, then walked in sorted key order. Prints a summary and one line per 1000th key.
use strict;
use warnings;

my $x = 12345;
sub next_rand { $x = ($x * 1103515245 + 12345) % 2147483648; return $x; }

my %h;
for my $i (0 .. 499_999) {
  my $key = sprintf("%08x-%d", next_rand(), $i);
  $h{$key} = [$i, "v" x ($i % 40), next_rand()];
}
my ($n, $sum, $len) = (0, 0, 0);
for my $key (sort keys %h) {
  my $v = $h{$key};
  $sum = ($sum + $v->[0] * 31 + $v->[2]) % 4294967291;
  $len += length($v->[1]);
  print "$key $v->[0] $v->[2]\n" if $n % 1000 == 0;
  $n++;
}
print "keys $n sum $sum len $len\n";
