#!/usr/bin/perl
# import_gen.pl - a deterministic history export for it_import.sh: InfluxDB line protocol as
# `influx_inspect export` writes it (# DDL / # DML / # CONTEXT-* header, ns timestamps) or CSV
# (time,serial,point,value with RFC 3339 or epoch-second times), with bad lines of every kind mixed in.
#
#   perl import_gen.pl FORMAT LINES PREFIX DEVICES FOREIGN_SERIAL OUT EXPECT
#
# FORMAT influx|csv; LINES data lines of good readings (bad lines and duplicates come on top); devices are
# PREFIX-INV-0000.. (DEVICES of them), PREFIX-DIS-0 is registered disabled; FOREIGN_SERIAL belongs to another
# tenant. Points: power (W, 0..20000), voltage (V, 0..500), energy (Wh, counter). One reading every 10 s per
# device. EXPECT receives what the import must report: "lines N", "skipped N", "accepted N", "rejected N",
# "readings N", "distinct N", "reject REASON N", "device SERIAL DISTINCT_ROWS", "from T" and "to T".
use strict;
use warnings;

my ($format, $lines, $prefix, $devices, $foreign, $out, $expect) = @ARGV;
die "usage: import_gen.pl influx|csv LINES PREFIX DEVICES FOREIGN OUT EXPECT\n" unless defined $expect;
open(my $o, '>', $out) or die "$out: $!";
my $t0 = 1790812800;    # 2026-10-01T00:00:00Z
my $step = 10;
my %reject;
my ($total, $skipped, $accepted, $readings, $distinct) = (0, 0, 0, 0, 0);
my %device_rows;
my ($last_good, $tmax) = (undef, $t0);

sub rfc3339 { my @g = gmtime($_[0]); sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ', $g[5] + 1900, $g[4] + 1, @g[3, 2, 1, 0]) }
sub emit { print $o $_[0], "\n"; $total++ }

my @bad = $format eq 'influx'
    ? (['malformed_line', sub { "inverter,serial=$_[0] power= $_[1]000000000" }],
       ['bad_timestamp', sub { "inverter,serial=$_[0] power=1" }],
       ['non_finite_value', sub { "inverter,serial=$_[0] power=1e999 $_[1]000000000" }],
       ['invalid_point_name', sub { "inverter,serial=$_[0] bad!name=1 $_[1]000000000" }],
       ['unknown_device', sub { "inverter,serial=NOPE-0001 power=1 $_[1]000000000" }],
       ['tenant_mismatch', sub { "inverter,serial=$foreign power=1 $_[1]000000000" }],
       ['device_disabled', sub { "inverter,serial=$prefix-DIS-0 power=1 $_[1]000000000" }],
       ['unknown_point', sub { "inverter,serial=$_[0] power=1,frequency=50 $_[1]000000000" }],
       ['value_out_of_range', sub { "inverter,serial=$_[0] power=99999 $_[1]000000000" }],
       ['timestamp_future', sub { "inverter,serial=$_[0] power=1 4070908800000000000" }],
       ['wrong_type', sub { "inverter,serial=$_[0] power=1,status=\"ok\" $_[1]000000000" }],
       ['duplicate', undef])
    : (['malformed_line', sub { "garbage,line" }],
       ['bad_timestamp', sub { "2026-13-45T00:00:00Z,$_[0],power,1" }],
       ['non_finite_value', sub { rfc3339($_[1]) . ",$_[0],power,1e999" }],
       ['invalid_point_name', sub { rfc3339($_[1]) . ",$_[0],bad point!,1" }],
       ['unknown_device', sub { rfc3339($_[1]) . ",NOPE-0001,power,1" }],
       ['tenant_mismatch', sub { rfc3339($_[1]) . ",$foreign,power,1" }],
       ['device_disabled', sub { rfc3339($_[1]) . ",$prefix-DIS-0,power,1" }],
       ['unknown_point', sub { rfc3339($_[1]) . ",$_[0],frequency,50" }],
       ['value_out_of_range', sub { "$_[1],$_[0],power,99999" }],
       ['timestamp_future', sub { "2099-01-01T00:00:00Z,$_[0],power,1" }],
       ['wrong_type', sub { rfc3339($_[1]) . ",$_[0],power,abc" }],
       ['duplicate', undef]);

if ($format eq 'influx') {
	emit($_) for ('# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z', '# DDL',
		      'CREATE DATABASE solar WITH NAME autogen', '# DML', '# CONTEXT-DATABASE:solar',
		      '# CONTEXT-RETENTION-POLICY:autogen', '# writing tsm data');
	$skipped += 7;
} else {
	emit('time,serial,point,value');
	$skipped += 1;
}

my $points = $format eq 'influx' ? 1 : 3;    # CSV: one line per reading
my ($n, $bad_index) = (0, 0);
for (my $tick = 0; $n < $lines; $tick++) {
	my $t = $t0 + $tick * $step;
	for (my $d = 0; $d < $devices && $n < $lines; $d++) {
		my $serial = sprintf('%s-INV-%04d', $prefix, $d);
		my %v = (power => (($d * 37 + $tick * 13) % 15000) + 0.5, voltage => 220 + ($tick % 20) + $d / 100,
			 energy => $tick * 10 + $d);
		my @lines;
		if ($format eq 'influx') {
			@lines = ("inverter,serial=$serial power=$v{power},voltage=$v{voltage},energy=$v{energy}i ${t}000000000");
		} else {
			# times alternate between RFC 3339 and epoch seconds (--time-unit s)
			my $ts = $tick % 2 ? rfc3339($t) : $t;
			@lines = map { "$ts,$serial,$_,$v{$_}" } qw(power voltage energy);
		}
		for my $line (@lines) {
			last if $n >= $lines;
			emit($line);
			$n++;
			$accepted++;
			my $r = $format eq 'influx' ? 3 : 1;
			$readings += $r;
			$distinct += $r;
			$device_rows{$serial} += $r;
			$tmax = $t;
			$last_good = [$line, $r];
			if ($n % 997 == 0) {
				my ($reason, $make) = @{ $bad[$bad_index++ % @bad] };
				if ($reason eq 'duplicate') {
					emit($last_good->[0]);
					$accepted++;
					$readings += $last_good->[1];
				} else {
					emit($make->($serial, $t));
					$reject{$reason}++;
				}
			}
			if ($n % 50000 == 0) {
				emit('');
				$skipped++;
			}
		}
	}
}
close($o) or die;
open(my $e, '>', $expect) or die "$expect: $!";
my $rejected = 0;
$rejected += $_ for values %reject;
print $e "lines $total\nskipped $skipped\naccepted $accepted\nrejected $rejected\nreadings $readings\n";
print $e "distinct $distinct\nfrom ", rfc3339($t0), "\nto ", rfc3339($tmax), "\n";
print $e "reject $_ $reject{$_}\n" for sort keys %reject;
print $e "device $_ $device_rows{$_}\n" for sort keys %device_rows;
close($e) or die;
