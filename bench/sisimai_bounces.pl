#!/usr/bin/perl
# Reads one mail file path per line; decodes each with Sisimai->make() (Sisimai 4.25: make, not v5's rise) and
# prints one tab-separated line per recipient: path, index, reason, status, reply code, hard bounce (1/0),
# decoder (smtpagent), feedback type. A file Sisimai cannot decode prints "path<TAB>0".
# With --time N: decodes every file N times and prints the elapsed seconds on stderr (one warm-up file first).
# With --warm PATHS_FILE after --time N: the warm-up is a pass over every file listed in PATHS_FILE instead.
use strict;
use warnings;
use Sisimai;
use Time::HiRes qw(time);

my $rounds = 0;
my $warm;
if (@ARGV && $ARGV[0] eq '--time') { $rounds = $ARGV[1]; }
if (@ARGV > 3 && $ARGV[2] eq '--warm') { $warm = $ARGV[3]; }
my @paths;
while (my $line = <STDIN>) {
    chomp $line;
    push @paths, $line if length $line;
}
if ($rounds) {
    if (defined $warm) {
        open(my $fh, '<', $warm) or die "$warm: $!";
        for my $line (<$fh>) { chomp $line; Sisimai->make($line, 'delivered' => 1) if length $line; }
        close $fh;
    } else {
        Sisimai->make($paths[0], 'delivered' => 1) if @paths;
    }
    my $t0 = time;
    for (1 .. $rounds) { Sisimai->make($_, 'delivered' => 1) for @paths; }
    printf STDERR "%.6f\n", time - $t0;
    exit 0;
}
for my $path (@paths) {
    my $list = Sisimai->make($path, 'delivered' => 1) // [];
    unless (@$list) { print "$path\t0\n"; next; }
    my $i = 0;
    for my $e (@$list) {
        $i++;
        my $hard = (defined $e->softbounce && $e->softbounce eq '0') ? 1 : 0;
        my @row = ($path, $i, $e->reason // '', $e->deliverystatus // '', $e->replycode // '', $hard,
                   $e->smtpagent // '', $e->feedbacktype // '');
        s/[\t\n\r]/ /g for @row;
        print join("\t", @row), "\n";
    }
}
