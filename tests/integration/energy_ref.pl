#!/usr/bin/perl
# energy_ref.pl - it_energy's random readings and its independent reference of the aggregates (issue 16).
#
#   energy_ref.pl gen SEED                 readings of the test devices, TSV: serial, time (ms), power, energy, daily
#   energy_ref.pl sql                      the SQL that gives the test tenants and points their settings
#   energy_ref.pl check READINGS DUMPDIR   compares DUMPDIR/{5m,1h,1d,1mo}.tsv (it_energy's dump of the tables)
#                                          with the reference computed from READINGS; prints mismatches, exits 1
#                                          if there is any
#
# The reference is written from the rules in README.md ("Aggregates": the counter rules table), not from the
# SQL of sql/014_energy.sql: it walks each point's whole series (no windows), and computes the local periods
# with the C library's time zone code (POSIX tzset/localtime/mktime), not PostgreSQL's.
use strict;
use warnings;
use POSIX qw(floor);

# --- the test fleet: one place for it_energy.sh, the generator and the reference --------------------------
# Each device reports for 30 hours either side of a DST transition of its tenant's zone (2026). Devices
# ending in 1 go quiet at night (a gap of hours); the others report through the night (a battery).
my %TENANT_TZ = (berlin => 'Europe/Berlin', sydney => 'Australia/Sydney');
my @DEVICES = (
	# serial, tenant, transition (UTC)
	['B1', 'berlin', '2026-03-29T01:00:00Z'],    # 02:00 CET -> 03:00 CEST: a 23-hour day
	['B2', 'berlin', '2026-10-25T01:00:00Z'],    # 03:00 CEST -> 02:00 CET: a 25-hour day
	['S1', 'sydney', '2026-10-03T16:00:00Z'],    # 02:00 AEST -> 03:00 AEDT: a 23-hour day
	['S2', 'sydney', '2026-04-04T16:00:00Z'],    # 03:00 AEDT -> 02:00 AEST: a 25-hour day
);
# point => [kind, counter_tolerance, max_rate (per hour; undef: no cap)]
my %POINTS = (
	power  => ['gauge', 0, undef],
	energy => ['counter', 0.5, 6000],           # Wh, lifetime; an inverter of at most 6 kW
	daily  => ['daily_counter', 0.01, undef],   # kWh since local midnight
);
my @POINT_NAMES = qw(power energy daily);
my $BUCKET = 300_000;                          # ms
my $WINDOW = 300_000;                          # ms: the gap limit and the glitch/noise look-around

sub epoch_of
{
	my ($iso) = @_;
	my ($y, $mo, $d, $h, $mi, $s) = $iso =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/ or die "bad time $iso";
	local $ENV{TZ} = 'UTC';
	POSIX::tzset();
	return POSIX::mktime($s, $mi, $h, $d, $mo - 1, $y - 1900);
}

sub with_zone
{
	my ($tz) = @_;
	$ENV{TZ} = $tz;
	POSIX::tzset();
}

# --- gen ----------------------------------------------------------------------------------------------------
sub gen
{
	my ($seed) = @_;
	srand($seed);
	for my $dev (@DEVICES) {
		my ($serial, $tenant, $transition) = @$dev;
		my $quiet_nights = $serial =~ /1$/;
		with_zone($TENANT_TZ{$tenant});
		my $t = (epoch_of($transition) - 30 * 3600) * 1000;
		my $end = $t + 60 * 3600 * 1000;
		my $energy = 1_000_000 + int(rand(1000));
		my $daily = 0;
		my $day = '';
		my @pending;    # readings forced by an event (glitch runs), each [dt, energy, daily]
		while ($t < $end) {
			my $r = rand();
			my $step = $r < 0.03 ? 300_001 + int(rand(1_500_000))    # a gap
			         : $r < 0.05 ? 300_000                              # exactly the gap limit: still paired
			         : 5_000 + int(rand(115_000));
			$t += $step;
			my @lt = localtime(floor($t / 1000));
			if ($quiet_nights && ($lt[2] >= 22 || $lt[2] < 5)) {
				next;    # night: no readings at all
			}
			my $ymd = sprintf('%04d-%02d-%02d', $lt[5] + 1900, $lt[4] + 1, $lt[3]);
			if ($ymd ne $day) {
				$daily = 0;    # the daily counter resets at local midnight (seen at the first reading after it)
				$day = $ymd;
			}
			my $power = sprintf('%.3f', rand(5000) - 20);
			my $rise_wh = rand(5000) * $step / 3_600_000;
			$energy += $rise_wh;
			$daily += $rise_wh / 1000;
			my ($e, $k) = ($energy, $daily);
			my $ev = rand();
			if ($ev < 0.02) {            # glitch: 1-4 readings of 0 (or tiny), then the counters go on
				my $n = 1 + int(rand(4));
				for my $i (1 .. $n) {
					my $z = rand() < 0.7 ? 0 : rand(2);
					printf "%s\t%d\t%s\t%.3f\t%.3f\n", $serial, $t, $power, $z, $z / 1000;
					$t += 5_000 + int(rand(90_000));
				}
			} elsif ($ev < 0.04) {       # noise: a dip within the tolerance
				$e = $energy - (0.01 + rand(0.44));
				$k = $daily - (0.001 + rand(0.008));
			} elsif ($ev < 0.05) {       # a dip beyond the tolerance that stays (the counter really went back)
				$energy -= 1 + rand(5);
				$daily = $daily > 0.05 ? $daily - 0.02 - rand(0.03) : $daily;
				($e, $k) = ($energy, $daily);
			} elsif ($ev < 0.055) {      # a real reset
				$energy = rand(10);
				$daily = 0;
				($e, $k) = ($energy, $daily);
			} elsif ($ev < 0.06) {       # an upward spike (one reading), beyond what 6 kW can make
				$e = $energy + 100_000;
				$k = $daily + 100;
			}
			printf "%s\t%d\t%s\t%.3f\t%.3f\n", $serial, $t, $power, $e < 0 ? 0 : $e, $k < 0 ? 0 : $k;
		}
	}
}

# --- sql ------------------------------------------------------------------------------------------------------
sub sql
{
	for my $tenant (sort keys %TENANT_TZ) {
		print "UPDATE tenants SET timezone = '$TENANT_TZ{$tenant}' WHERE slug = '$tenant';\n";
	}
	for my $p (@POINT_NAMES) {
		my ($kind, $tol, $max_rate) = @{$POINTS{$p}};
		printf "UPDATE points SET kind = '%s', counter_tolerance = %s, max_rate = %s WHERE name = '%s';\n",
			$kind, $tol, defined $max_rate ? $max_rate : 'NULL', $p;
	}
}

# --- the reference --------------------------------------------------------------------------------------------
# 5-minute rows of one point's readings [[t_ms, value], ...] sorted by time.
sub five_minute_rows
{
	my ($kind, $tol, $max_rate, $readings) = @_;
	my %rows;
	my $n = @$readings;
	for my $i (0 .. $n - 1) {
		my ($t, $v) = @{$readings->[$i]};
		my $b = floor($t / $BUCKET) * $BUCKET;
		my $row = $rows{$b} //= {count => 0, sum => 0, min => $v, max => $v, first_time => $t, first_value => $v,
		                         integral => 0, increase => ($kind eq 'gauge' ? undef : 0)};
		$row->{count}++;
		$row->{sum} += $v;
		$row->{min} = $v if $v < $row->{min};
		$row->{max} = $v if $v > $row->{max};
		($row->{last_time}, $row->{last_value}) = ($t, $v);    # ascending: the last one seen is the last
		if ($i > 0) {
			my ($pt, $pv) = @{$readings->[$i - 1]};
			$row->{integral} += ($v + $pv) / 2 * (($t - $pt) / 1000) / 3600 if $t - $pt <= $WINDOW;
		}
	}
	return \%rows if $kind eq 'gauge';
	# Which readings count for increase: skipped when below the largest reading of the 5 minutes before,
	# and either within the tolerance of it (noise) or followed within 5 minutes by a reading at least as
	# large (a glitch).
	my @kept;
	my ($lo, $hi) = (0, 0);    # the readings in [t - 5 min, t) are $lo .. $i - 1
	for my $i (0 .. $n - 1) {
		my ($t, $v) = @{$readings->[$i]};
		$lo++ while $readings->[$lo][0] < $t - $WINDOW;
		my $before;
		for my $j ($lo .. $i - 1) {
			$before = $readings->[$j][1] if !defined $before || $readings->[$j][1] > $before;
		}
		my $after;
		for (my $j = $i + 1; $j < $n && $readings->[$j][0] <= $t + $WINDOW; $j++) {
			$after = $readings->[$j][1] if !defined $after || $readings->[$j][1] > $after;
		}
		my $skip = defined $before && $v < $before
		           && ($v >= $before - $tol || (defined $after && $after >= $before));
		push @kept, [$t, $v] unless $skip;
	}
	for my $i (1 .. $#kept) {
		my ($t, $v) = @{$kept[$i]};
		my ($pt, $pv) = @{$kept[$i - 1]};
		next if $t - $pt > $WINDOW;    # a gap counts nothing
		my $inc = $v >= $pv ? $v - $pv : $v >= $pv - $tol ? 0 : ($v > 0 ? $v : 0);
		if (defined $max_rate) {
			my $cap = $max_rate * (($t - $pt) / 1000) / 3600;
			$inc = $cap if $inc > $cap;
		}
		$rows{floor($t / $BUCKET) * $BUCKET}{increase} += $inc;
	}
	return \%rows;
}

# The start (ms) of the local period (hour, day, month) holding instant $ms, in the zone set by with_zone().
sub period_start
{
	my ($unit, $ms) = @_;
	my $s = $ms / 1000;
	my @lt = localtime($s);
	return ($s - $lt[1] * 60 - $lt[0]) * 1000 if $unit eq 'hour';
	return POSIX::mktime(0, 0, 0, $lt[3], $lt[4], $lt[5], 0, 0, -1) * 1000 if $unit eq 'day';
	return POSIX::mktime(0, 0, 0, 1, $lt[4], $lt[5], 0, 0, -1) * 1000;
}

sub local_text
{
	my ($ms) = @_;
	return POSIX::strftime('%Y-%m-%d %H:%M:%S', localtime($ms / 1000));
}

# Rollup rows of one unit from 5-minute rows { bucket => row }.
sub rollup_rows
{
	my ($unit, $five) = @_;
	my %rows;
	for my $b (sort { $a <=> $b } keys %$five) {
		my $f = $five->{$b};
		my $p = period_start($unit, $b);
		my $row = $rows{$p} //= {buckets => 0, count => 0, sum => 0, integral => 0, min => $f->{min},
		                         max => $f->{max}, first_time => $f->{first_time},
		                         first_value => $f->{first_value}, local_start => local_text($p),
		                         increase => (defined $f->{increase} ? 0 : undef)};
		$row->{buckets}++;
		$row->{count} += $f->{count};
		$row->{sum} += $f->{sum};
		$row->{integral} += $f->{integral};
		$row->{increase} += $f->{increase} if defined $f->{increase};
		$row->{min} = $f->{min} if $f->{min} < $row->{min};
		$row->{max} = $f->{max} if $f->{max} > $row->{max};
		($row->{last_time}, $row->{last_value}) = ($f->{last_time}, $f->{last_value});
	}
	return \%rows;
}

my @COLUMNS = qw(count avg min max first_value first_time last_value last_time sum integral increase);

sub close_enough
{
	my ($x, $y) = @_;
	return !defined $x && !defined $y if !defined $x || !defined $y;
	return abs($x - $y) <= 1e-9 * (abs($x) > 1 ? abs($x) : 1);
}

sub check
{
	my ($readings_file, $dump) = @_;
	my %series;    # serial => point => [[t, v]]
	open my $in, '<', $readings_file or die "$readings_file: $!";
	while (<$in>) {
		chomp;
		my ($serial, $t, @v) = split /\t/;
		push @{$series{$serial}{$POINT_NAMES[$_]}}, [$t, $v[$_]] for 0 .. 2;
	}
	close $in;
	my %tenant_of = map { $_->[0] => $_->[1] } @DEVICES;
	my %ref;    # level => "serial|point|bucket" => row
	for my $serial (sort keys %series) {
		with_zone($TENANT_TZ{$tenant_of{$serial}});
		for my $p (@POINT_NAMES) {
			# A replay or a duplicate instant keeps the first row (ON CONFLICT DO NOTHING): one per time.
			my %seen;
			my @r = grep { !$seen{$_->[0]}++ } sort { $a->[0] <=> $b->[0] } @{$series{$serial}{$p}};
			my $five = five_minute_rows(@{$POINTS{$p}}, \@r);
			my %levels = ('5m' => $five, '1h' => rollup_rows('hour', $five));
			$levels{'1d'} = rollup_rows('day', $five);
			$levels{'1mo'} = rollup_rows('month', $five);
			for my $level (keys %levels) {
				for my $b (keys %{$levels{$level}}) {
					my $row = $levels{$level}{$b};
					$row->{avg} = $row->{sum} / $row->{count};
					$ref{$level}{"$serial|$p|$b"} = $row;
				}
			}
		}
	}
	my ($bad, $rows) = (0, 0);
	for my $level (qw(5m 1h 1d 1mo)) {
		my %db;
		open my $d, '<', "$dump/$level.tsv" or die "$dump/$level.tsv: $!";
		while (<$d>) {
			chomp;
			my ($serial, $p, $b, $local_start, $buckets, @vals) = split /\t/, $_, -1;
			my %row;
			@row{@COLUMNS} = map { $_ eq '' ? undef : $_ } @vals;
			$row{local_start} = $local_start;
			$row{buckets} = $buckets;
			$db{"$serial|$p|$b"} = \%row;
		}
		close $d;
		for my $key (sort keys %{{%db, %{$ref{$level}}}}) {
			$rows++;
			my ($x, $y) = ($ref{$level}{$key}, $db{$key});
			my @diff;
			if (!$x || !$y) {
				push @diff, $x ? 'missing in the database' : 'not in the reference';
			} else {
				for my $c (@COLUMNS) {
					push @diff, "$c: reference " . ($x->{$c} // 'NULL') . ", database " . ($y->{$c} // 'NULL')
						unless close_enough($x->{$c}, $y->{$c});
				}
				if ($level ne '5m') {
					push @diff, "local_start: reference $x->{local_start}, database $y->{local_start}"
						unless $x->{local_start} eq $y->{local_start};
					push @diff, "buckets: reference $x->{buckets}, database $y->{buckets}"
						unless $x->{buckets} == $y->{buckets};
				}
			}
			next unless @diff;
			$bad++;
			print "$level $key: ", join('; ', @diff), "\n" if $bad <= 20;
		}
	}
	print "mismatches $bad of $rows rows\n";
	exit($bad ? 1 : 0);
}

unless (caller) {    # `require`d (the README table's examples were checked this way), it only defines the subs
	my $cmd = shift // '';
	if ($cmd eq 'gen') { gen(shift // 16) }
	elsif ($cmd eq 'sql') { sql() }
	elsif ($cmd eq 'check') { check(@ARGV) }
	else { die "usage: energy_ref.pl gen SEED | sql | check READINGS DUMPDIR\n" }
}
1;
