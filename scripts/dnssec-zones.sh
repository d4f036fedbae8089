#!/usr/bin/env bash
# Writes a signed private DNS hierarchy into DIR, for the DNSSEC tests: a root zone `.`,
# `test.`, and children under `test.`, good and deliberately broken. Every zone is signed
# here with dnssec-signzone (bind9-utils) at fixed dates, so that a zone's contents depend
# only on its keys; keys are made fresh on each run. Knot serves the result as it is.
#
#   scripts/dnssec-zones.sh DIR
#
# Writes:
#   DIR/zones/NAME.zone     one signed (or unsigned) zone file per zone ("root.zone" for `.`)
#   DIR/zones.list          "APEX FILE" per zone, for the server configuration
#   DIR/anchors.zone        the root's DS record in zone-file syntax (vrules' trust_anchor_file)
#   DIR/delv-anchors.conf   the same anchor for `delv -a` (a trust-anchors clause)
#   DIR/keys/               the keys
#
# The zones (all names end in .test; addresses are documentation or loopback ones):
#   alg8.test        RSASHA256 (8), NSEC; a CNAME to www.alg15.test (a chain across zones)
#   alg13.test       ECDSAP256SHA256 (13), NSEC3 without opt-out, a wildcard
#   alg15.test       ED25519 (15), NSEC, a wildcard; a CNAME to www.expired.test (bogus end)
#   optout.test      13, NSEC3 with opt-out, and an unsigned delegation unsigned.optout.test
#   insecure.test    unsigned, delegated without DS
#   expired.test     signatures expired in 2020
#   future.test      signatures valid only from 2040
#   dsmismatch.test  the DS in test. matches no key of the zone
#   wrongkey.test    www's A signed by a key that is not in the DNSKEY set
#   missingsig.test  www's A without its RRSIG
#   nsecmissing.test every NSEC record removed (NXDOMAIN/NODATA without proof)
#   nsecgone.test    records removed after signing: the NSEC chain proves they exist
#   nsec3missing.test, nsec3gone.test   the same with NSEC3
#   unknownalg.test  its DS in test. says algorithm 253 (unsupported: insecure)
#   unknowndigest.test its DS in test. uses digest type 253 (unsupported: insecure)
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
for tool in dnssec-keygen dnssec-signzone dnssec-dsfromkey knsec3hash; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        package=bind9-utils
        [ "$tool" = knsec3hash ] && package=knot-dnssecutils
        echo "$0: $tool is missing: install the Debian package $package (apt-get install $package)" >&2
        exit 1
    fi
done

DIR=$1
mkdir -p "$DIR/zones" "$DIR/keys" "$DIR/work"
DIR=$(cd "$DIR" && pwd)
KEYS=$DIR/keys
WORK=$DIR/work
: > "$DIR/zones.list"

# Fixed signing windows (YYYYMMDDHHMMSS, UTC).
VALID_FROM=20250101000000
VALID_UNTIL=20351231000000
EXPIRED_FROM=20200101000000
EXPIRED_UNTIL=20200201000000
FUTURE_FROM=20400101000000
FUTURE_UNTIL=20410101000000

# zone_file APEX: where a zone's file goes.
zone_file() {
    if [ "$1" = "." ]; then echo "$DIR/zones/root.zone"; else echo "$DIR/zones/${1%.}.zone"; fi
}

# serve APEX: lists a zone for the server.
serve() {
    echo "$1 $(zone_file "$1")" >> "$DIR/zones.list"
}

# key APEX ALGORITHM [NAME]: makes a key (KSK flag, the zone's only key) and prints its base name.
key() {
    local apex=$1 algorithm=$2 size=()
    [ "$algorithm" = RSASHA256 ] && size=(-b 2048)
    dnssec-keygen -q -a "$algorithm" "${size[@]}" -f KSK -n ZONE -K "$KEYS" "$apex"
}

# head APEX: the SOA and NS every zone starts with.
head_records() {
    local apex=$1
    cat <<EOF
\$TTL 300
$apex SOA ns.test. hostmaster.test. 2026010101 3600 600 86400 300
$apex NS ns.test.
EOF
}

# sign APEX KEYNAME SOURCE OUT FROM UNTIL [extra dnssec-signzone options]: signs SOURCE
# (which $INCLUDEs its keys) into OUT, one record a line with full names.
sign() {
    local apex=$1 keyname=$2 source=$3 out=$4 from=$5 until=$6
    shift 6
    dnssec-signzone -q -P -z -O full -N keep -K "$KEYS" -d "$WORK" -o "$apex" -s "$from" -e "$until" \
        -f "$out" "$@" "$source" "$KEYS/$keyname.key" >/dev/null
    # Drop the comments (the signing time among them): the file depends only on the keys.
    sed -i '/^;/d' "$out"
}

# ds KEYNAME: the DS record (SHA-256) of a key, as "OWNER IN DS TAG ALG 2 HEX".
ds() {
    dnssec-dsfromkey -2 "$KEYS/$1.key"
}

# A child zone under test.: prints nothing; writes the signed file and appends its DS
# (as the parent should publish it) to $WORK/test.ds.
# child APEX ALGORITHM DENIAL BODY [FROM UNTIL]
#   DENIAL is "nsec", "nsec3" or "nsec3-optout".
child() {
    local apex=$1 algorithm=$2 denial=$3 body=$4 from=${5:-$VALID_FROM} until=${6:-$VALID_UNTIL}
    local keyname source options=()
    keyname=$(key "$apex" "$algorithm")
    source=$WORK/${apex%.}.unsigned
    { head_records "$apex"; printf '%s\n' "$body"; echo "\$INCLUDE $KEYS/$keyname.key"; } > "$source"
    case $denial in
        nsec) ;;
        nsec3) options=(-3 - -H 0) ;;
        nsec3-optout) options=(-3 - -H 0 -A) ;;
    esac
    sign "$apex" "$keyname" "$source" "$(zone_file "$apex")" "$from" "$until" "${options[@]}"
    ds "$keyname" >> "$WORK/test.ds"
    echo "$keyname" > "$WORK/${apex%.}.keyname"
    serve "$apex"
}

# remove FILE AWK-CONDITION: deletes the records matching the condition ($1 owner, $4 type,
# $5 the type an RRSIG covers) from a signed zone file.
remove() {
    local file=$1 condition=$2
    awk "!($condition)" "$file" > "$file.tmp" && mv "$file.tmp" "$file"
}

: > "$WORK/test.ds"
COMMON_BODY='www A 192.0.2.1
www AAAA 2001:db8::1
@ MX 10 mail
mail A 192.0.2.25
@ TXT "v=spf1 -all"'

# --- Good zones -----------------------------------------------------------------
child alg15.test. ED25519 nsec "$COMMON_BODY
*.wild A 192.0.2.15
tobogus CNAME www.expired.test."
child alg8.test. RSASHA256 nsec "$COMMON_BODY
chain CNAME www.alg15.test."
child alg13.test. ECDSAP256SHA256 nsec3 "$COMMON_BODY
*.wild A 192.0.2.13"

# optout.test: NSEC3 opt-out, with an unsigned delegation (no DS) to a zone Knot serves.
child optout.test. ECDSAP256SHA256 nsec3-optout "$COMMON_BODY
unsigned NS ns.test."
{ head_records unsigned.optout.test.; echo 'www A 192.0.2.77'; echo '@ MX 10 www'; } > "$(zone_file unsigned.optout.test.)"
serve unsigned.optout.test.

# insecure.test: unsigned, delegated from test. without DS.
{ head_records insecure.test.; printf '%s\n' "$COMMON_BODY"; } > "$(zone_file insecure.test.)"
serve insecure.test.

# --- Broken zones ---------------------------------------------------------------
child expired.test. ECDSAP256SHA256 nsec "$COMMON_BODY" "$EXPIRED_FROM" "$EXPIRED_UNTIL"
child future.test. ECDSAP256SHA256 nsec "$COMMON_BODY" "$FUTURE_FROM" "$FUTURE_UNTIL"

# dsmismatch.test: signed properly, but the DS published in test. is that of another key.
child dsmismatch.test. ECDSAP256SHA256 nsec "$COMMON_BODY"
grep -v '^dsmismatch\.test\.' "$WORK/test.ds" > "$WORK/test.ds.tmp" && mv "$WORK/test.ds.tmp" "$WORK/test.ds"
ds "$(key dsmismatch.test. ECDSAP256SHA256)" >> "$WORK/test.ds"

# wrongkey.test: www's A signature replaced by one from a key outside the DNSKEY set.
child wrongkey.test. ECDSAP256SHA256 nsec "$COMMON_BODY"
stray=$(key wrongkey.test. ECDSAP256SHA256)
{ head_records wrongkey.test.; printf '%s\n' "$COMMON_BODY"; echo "\$INCLUDE $KEYS/$stray.key"; } > "$WORK/wrongkey.stray"
sign wrongkey.test. "$stray" "$WORK/wrongkey.stray" "$WORK/wrongkey.stray.signed" "$VALID_FROM" "$VALID_UNTIL"
remove "$(zone_file wrongkey.test.)" '$1 == "www.wrongkey.test." && $4 == "RRSIG" && $5 == "A"'
awk '$1 == "www.wrongkey.test." && $4 == "RRSIG" && $5 == "A"' "$WORK/wrongkey.stray.signed" >> "$(zone_file wrongkey.test.)"

# missingsig.test: www's A without a signature.
child missingsig.test. ECDSAP256SHA256 nsec "$COMMON_BODY"
remove "$(zone_file missingsig.test.)" '$1 == "www.missingsig.test." && $4 == "RRSIG" && $5 == "A"'

# nsecmissing.test / nsec3missing.test: denials without their proofs.
child nsecmissing.test. ECDSAP256SHA256 nsec "$COMMON_BODY"
remove "$(zone_file nsecmissing.test.)" '$4 == "NSEC" || ($4 == "RRSIG" && $5 == "NSEC")'
# Knot (3.2) crashes answering from an NSEC3 zone with no NSEC3 record at all, so this one
# loses only the NSEC3 records of the apex (the closest encloser of every NXDOMAIN) and of www
# (the NODATA proof for www): knsec3hash (knot-dnssecutils) names them.
child nsec3missing.test. ECDSAP256SHA256 nsec3 "$COMMON_BODY"
for name in nsec3missing.test. www.nsec3missing.test.; do
    hash=$(knsec3hash - 1 0 "$name" | cut -d' ' -f1)
    remove "$(zone_file nsec3missing.test.)" "tolower(\$1) == \"$hash.nsec3missing.test.\""
done

# nsecgone.test / nsec3gone.test: www's TXT and the name gone removed after signing, so the
# denials Knot gives for them carry proofs that say they exist.
child nsecgone.test. ECDSAP256SHA256 nsec "$COMMON_BODY
www TXT \"removed after signing\"
gone A 192.0.2.99"
remove "$(zone_file nsecgone.test.)" '($1 == "www.nsecgone.test." && ($4 == "TXT" || ($4 == "RRSIG" && $5 == "TXT"))) || ($1 == "gone.nsecgone.test." && ($4 == "A" || ($4 == "RRSIG" && $5 == "A")))'
child nsec3gone.test. ECDSAP256SHA256 nsec3 "$COMMON_BODY
www TXT \"removed after signing\"
gone A 192.0.2.99"
remove "$(zone_file nsec3gone.test.)" '($1 == "www.nsec3gone.test." && ($4 == "TXT" || ($4 == "RRSIG" && $5 == "TXT"))) || ($1 == "gone.nsec3gone.test." && ($4 == "A" || ($4 == "RRSIG" && $5 == "A")))'

# unknownalg.test / unknowndigest.test: signed properly; the parent's DS uses an algorithm
# (253, private) or a digest type (253) no validator supports.
child unknownalg.test. ECDSAP256SHA256 nsec "$COMMON_BODY"
awk '$1 == "unknownalg.test." { $5 = 253 } { print }' "$WORK/test.ds" > "$WORK/test.ds.tmp" && mv "$WORK/test.ds.tmp" "$WORK/test.ds"
child unknowndigest.test. ECDSAP256SHA256 nsec "$COMMON_BODY"
awk '$1 == "unknowndigest.test." { $6 = 253 } { print }' "$WORK/test.ds" > "$WORK/test.ds.tmp" && mv "$WORK/test.ds.tmp" "$WORK/test.ds"

# --- test. ----------------------------------------------------------------------
test_key=$(key test. ECDSAP256SHA256)
{
    head_records test.
    echo 'ns A 127.0.0.1'
    for zone in alg8 alg13 alg15 optout insecure expired future dsmismatch wrongkey missingsig \
                nsecmissing nsecgone nsec3missing nsec3gone unknownalg unknowndigest; do
        echo "$zone NS ns.test."
    done
    cat "$WORK/test.ds"
    echo "\$INCLUDE $KEYS/$test_key.key"
} > "$WORK/test.unsigned"
sign test. "$test_key" "$WORK/test.unsigned" "$(zone_file test.)" "$VALID_FROM" "$VALID_UNTIL"
serve test.

# --- the root -------------------------------------------------------------------
root_key=$(key . ECDSAP256SHA256)
{
    echo '$TTL 300'
    echo '. SOA ns.test. hostmaster.test. 2026010101 3600 600 86400 300'
    echo '. NS ns.test.'
    echo 'test. NS ns.test.'
    echo 'ns.test. A 127.0.0.1'
    ds "$test_key"
    echo "\$INCLUDE $KEYS/$root_key.key"
} > "$WORK/root.unsigned"
sign . "$root_key" "$WORK/root.unsigned" "$(zone_file .)" "$VALID_FROM" "$VALID_UNTIL"
serve .

# --- trust anchors ----------------------------------------------------------------
ds "$root_key" > "$DIR/anchors.zone"
read -r _ _ _ tag algorithm digest_type digest < "$DIR/anchors.zone"
cat > "$DIR/delv-anchors.conf" <<EOF
trust-anchors {
    "." static-ds $tag $algorithm $digest_type "$digest";
};
EOF
