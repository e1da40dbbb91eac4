#!/usr/bin/perl
# slowloris.pl - a slow HTTP client for it_security_daemon.sh: opens connections that send a request's
# header one line at a time and never finish it, the way a slowloris attack holds a server's connection slots.
#
#   slowloris.pl hold PORT COUNT SOURCES STATUSFILE
#       opens COUNT connections to 127.0.0.1:PORT, from source addresses 127.0.0.2 .. 127.0.0.(1+SOURCES)
#       in turn (each one "client"), sends one more header line on each every second, and writes
#       "open N closed M" to STATUSFILE after every round (closed = the server ended it). Runs until killed.
#   slowloris.pl trickle PORT OUTFILE
#       one connection that sends one byte of a header every second; when the server closes it, writes
#       "closed after S s" to OUTFILE and exits 0; gives up (writes "still open after S s") after 120 s.
#
# Loopback routes the whole of 127.0.0.0/8, so source addresses other than 127.0.0.1 need no set-up.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';
my $mode = shift // die "usage: slowloris.pl hold|trickle ...\n";

sub status_to
{
	my ($file, $text) = @_;
	open(my $fh, '>', "$file.tmp") or die "$file.tmp: $!\n";
	print $fh "$text\n";
	close($fh);
	rename("$file.tmp", $file) or die "rename $file: $!\n";
}

# True when the server has closed sock (readable with EOF or an error).
sub server_closed
{
	my ($sock) = @_;
	return 0 unless IO::Select->new($sock)->can_read(0);
	my $n = sysread($sock, my $buf, 4096);
	return !defined($n) || $n == 0;
}

if ($mode eq 'hold') {
	my ($port, $count, $sources, $statusfile) = @ARGV;
	my @socks;
	for my $i (0 .. $count - 1) {
		my $src = '127.0.0.' . (2 + $i % $sources);
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, LocalAddr => $src,
					      Proto => 'tcp', Timeout => 10);
		next unless $s;
		syswrite($s, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
		push @socks, $s;
	}
	my $line = 0;
	while (1) {
		my ($open, $closed) = (0, 0);
		for my $s (@socks) {
			if (!defined $s) {
				$closed++;
				next;
			}
			if (server_closed($s) || !defined(syswrite($s, "X-Slow-$line: x\r\n"))) {
				close($s);
				$s = undef;
				$closed++;
				next;
			}
			$open++;
		}
		status_to($statusfile, "open $open closed $closed");
		$line++;
		sleep(1);
	}
}

if ($mode eq 'trickle') {
	my ($port, $outfile) = @ARGV;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 10)
	  or die "connect: $!\n";
	my $request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" . ("X-Slow: " . ("x" x 200) . "\r\n");
	my $start = time();
	my $i = 0;
	while (time() - $start < 120) {
		if (server_closed($s) || !defined(syswrite($s, substr($request, $i % length($request), 1)))) {
			status_to($outfile, sprintf("closed after %.1f s", time() - $start));
			exit 0;
		}
		$i++;
		sleep(1);
	}
	status_to($outfile, sprintf("still open after %.1f s", time() - $start));
	exit 0;
}
die "unknown mode $mode\n";
