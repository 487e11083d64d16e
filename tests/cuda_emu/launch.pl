#!/usr/bin/perl
# launch.pl — TEST TOOLING: rewrites a .cu file for the CPU emulation
# (tests/cuda_emu): every launch `k<<<grid, block[, smem[, stream]]>>>(args)`,
# templated names and launches over several lines included, becomes
# `emu_launch("k", __FILE__, __LINE__, &k, grid, block, ...)(args)`; every
# `extern __shared__ T name[];` becomes a pointer to the launch's dynamic
# shared memory. Line numbers are kept (newlines inside a launch stay).
use strict;
use warnings;
local $/;
my $src = <STDIN>;
my $n = 0;
$src =~ s{\b([A-Za-z_]\w*(?:\s*<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\(}{
    my ($k, $cfg) = ($1, $2); $n++;
    (my $name = $k) =~ s/\s+//g;
    "emu_launch(\"$name\", __FILE__, __LINE__, &$k, $cfg)("
}gse;
$src =~ s{extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?(\w+)\s+(?:__align__\(\s*\d+\s*\)\s+)?(\w+)\s*\[\s*\]\s*;}{$1 *$2 = ($1 *)emu::dyn_smem();}g;
die "launch.pl: a <<< >>> left unrewritten\n" if $src =~ /<<<|>>>/;
print "#line 1 \"$ARGV[0]\"\n" if @ARGV;
print $src;
