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
$src =~ s{extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?(\w+(?:\s+\w+)*?)\s+(?:__align__\(\s*\d+\s*\)\s+)?(\w+)\s*\[\s*\]\s*;}{$1 *$2 = ($1 *)emu::dyn_smem();}g;
# `__shared__ T a[N], b[M];` in a .cu file: references into the emulator's
# shared arena (emu::shared_new), which is filled with 0xff bytes (NaN, -1)
# before each block, so a read of shared memory the block did not write gets
# garbage as on a GPU, not a zero or the previous block's value. (A static
# would be zero and keep its value across blocks.) Headers are not rewritten:
# their __shared__ stay statics.
$src =~ s{(?<![\w\s])(\s*)__shared__\s+([^;{}()]+);}{
    my ($ws, $decl) = ($1, $2);
    my @parts = split /\s*,\s*/, $decl;
    my ($type) = $parts[0] =~ /^(.*?)\s*\b\w+\s*(?:\[|$)/;
    $parts[0] =~ s/^\Q$type\E\s*//;
    my $out = $ws;
    for my $d (@parts) {
        my ($name, $dims) = $d =~ /^(\w+)\s*((?:\[[^\]]*\]\s*)*)$/ or die "launch.pl: __shared__ $decl: cannot parse\n";
        $dims =~ s/\s+//g;
        my $t = "$type" . ($dims eq "" ? "" : "$dims");
        if ($dims eq "") {
            $out .= "static void *emu_sh_$name; $type &$name = *($type *)(emu_sh_$name ? emu_sh_$name : (emu_sh_$name = emu::shared_new(sizeof($type)))); ";
        } else {
            $out .= "static void *emu_sh_$name; $type (&$name)$dims = *($type (*)$dims)(emu_sh_$name ? emu_sh_$name : (emu_sh_$name = emu::shared_new(sizeof($type$dims)))); ";
        }
    }
    $out
}ge;
die "launch.pl: a <<< >>> left unrewritten\n" if $src =~ /<<<|>>>/;
print "#line 1 \"$ARGV[0]\"\n" if @ARGV;
print $src;
