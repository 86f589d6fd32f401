# Word counts of the generated text (about 2 M distinct words), then every word with its count
# and first position, in the order of the words' first appearance (awk's arrays do not keep it,
# so a second array does).
{
  for (i = 1; i <= NF; i++) {
    w = $i
    if (!(w in count)) {
      order[++distinct] = w
      first[w] = NR ":" i
    }
    count[w]++
    total++
  }
}
END {
  for (k = 1; k <= distinct; k++) {
    w = order[k]
    print w, count[w], first[w]
  }
  print "words", total, "distinct", distinct
}
