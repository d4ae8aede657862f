#!/bin/sh
# kiln-veth: the smallest CNI plugin that makes a node Ready. It gives the
# pod's network namespace a veth pair, both ends inside it, and an address
# from 10.88.0.0/16 derived from the container id. The kernels we test on
# have no dummy link type; nothing outside the namespace is reachable, so a
# pod that must reach the host uses hostNetwork.
cat >/dev/null
ns() { nsenter --net="$CNI_NETNS" "$@"; }
case "$CNI_COMMAND" in
VERSION)
	echo '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}'
	;;
ADD)
	h=$(printf '%s' "$CNI_CONTAINERID" | md5sum | cut -c1-4)
	ip="10.88.$((0x$(echo "$h" | cut -c1-2))).$((0x$(echo "$h" | cut -c3-4) % 253 + 1))"
	ns ip link add "$CNI_IFNAME" type veth peer name "${CNI_IFNAME}p" >&2 &&
		ns ip addr add "$ip/32" dev "$CNI_IFNAME" >&2 &&
		ns ip link set "${CNI_IFNAME}p" up >&2 &&
		ns ip link set "$CNI_IFNAME" up >&2 || {
		echo '{"cniVersion":"0.4.0","code":999,"msg":"kiln-veth: setting up '"$CNI_IFNAME"' failed"}'
		exit 1
	}
	printf '{"cniVersion":"0.4.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"version":"4","address":"%s/32","interface":0}],"dns":{}}\n' \
		"$CNI_IFNAME" "$CNI_NETNS" "$ip"
	;;
DEL)
	if [ -n "$CNI_NETNS" ] && [ -e "$CNI_NETNS" ]; then ns ip link del "$CNI_IFNAME" 2>/dev/null; fi
	exit 0
	;;
esac
exit 0
