#!/usr/bin/perl
# Reads one reply per line (JSON-escaped newlines as \n), prints Sisimai::Reason->match() for each, one per line.
# With --time N: classifies the whole input N times and prints the elapsed seconds on stderr.
use strict;
use warnings;
use Sisimai::Reason;
use Time::HiRes qw(time);

my $rounds = 0;
if (@ARGV && $ARGV[0] eq '--time') { $rounds = $ARGV[1]; }
my @lines;
while (my $line = <STDIN>) {
    chomp $line;
    $line =~ s/\\n/\n/g;
    push @lines, $line;
}
if ($rounds) {
    my $t0 = time;
    for (1 .. $rounds) { Sisimai::Reason->match($_) for @lines; }
    printf STDERR "%.6f\n", time - $t0;
    exit 0;
}
for my $line (@lines) {
    my $r = Sisimai::Reason->match($line) // '';
    print "$r\n";
}
