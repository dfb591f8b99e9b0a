# SPDX-License-Identifier: MIT
# cpu_sample and cpu_delta of dom0-lib.sh (the benchmarks' CPU columns), run by the POSIX sh
# dom0's /init uses: a sample is "UPTIME_S DOM0_BUSY BLANKETD" with blanketd's ticks those of
# the process blanketd_pid names, and the delta of two is their difference, field by field.
# Usage: sh test-cpu-sample.sh DOM0-LIB
. "$1" || exit 1

err=0
bad() {
	echo "FAIL: $*"
	err=1
}
num='^[0-9][0-9]*(\.[0-9]*)? [0-9][0-9]* [0-9][0-9]*$'

# blanketd is not running: its ticks are 0.
blanketd_pid() { echo 999999999; }
a=$(cpu_sample)
echo "$a" | grep -Eq "$num" || bad "cpu_sample printed '$a'"
[ "${a##* }" = 0 ] || bad "no blanketd: '$a' does not end in 0"

# This shell stands in for blanketd: a busy second or two shows in both tick counts.
blanketd_pid() { echo $$; }
a=$(cpu_sample)
end=$(($(date +%s) + 2))
while [ "$(date +%s)" -lt "$end" ]; do
	i=0
	while [ $i -lt 20000 ]; do i=$((i + 1)); done
done
b=$(cpu_sample)
d=$(cpu_delta "$a" "$b")
echo "samples '$a' -> '$b', delta '$d'"
echo "$d" | grep -Eq "$num" || bad "cpu_delta printed '$d'"
set -- $d
awk -v w="$1" 'BEGIN { exit !(w >= 1 && w < 10) }' || bad "wall time $1 s for a busy 1-2 s"
# Loose bounds: the machine may be shared, but a busy loop gets some CPU.
[ "$3" -ge 5 ] || bad "the stand-in blanketd used $3 ticks for a busy 1-2 s"
[ "$2" -ge "$3" ] || bad "dom0 busy $2 ticks, less than one of its processes ($3)"
[ "$(cpu_delta '10.5 100 7' '12.5 250 9')" = "2 150 2" ] || bad "cpu_delta of fixed samples"
exit $err
