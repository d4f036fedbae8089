// libidn2 (Debian libidn2-dev): IDNA2008 with Unicode TS #46 mapping, for the DNS module's
// conversion of internationalized names to A-labels before any query.
#include <idn2.h>
