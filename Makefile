# vrules: release build, man pages and installation (README.md, "Deploying").
#
#   make                      release build, Swift runtime linked statically
#   make install              into PREFIX (default /usr/local), configuration in /etc/vrules
#   make install DESTDIR=/tmp/stage PREFIX=/usr     staged, for packaging
#   make install-strip        the same, the binary stripped
#   make uninstall            removes what install put under PREFIX; /etc/vrules stays
#
# /etc/vrules/vrules.toml and the rules are installed only where no file exists yet:
# an operator's configuration and rules are never overwritten. The shipped copies are
# always installed in $(DATADIR), to compare with.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/vrules
UNITDIR    ?= $(PREFIX)/lib/systemd/system
# The unit and the docs name /etc/vrules (systemd's ConfigurationDirectory= is under /etc):
# not a setting.
override SYSCONFDIR := /etc
DESTDIR    ?=

SWIFT       ?= swift
# The Swift runtime and Foundation are linked into the binary: the host needs only
# glibc, libstdc++/libgcc_s (the C++ runtime the Swift runtime is built on), liblua5.4 and libidn2.
BUILD_FLAGS  = -c release --static-swift-stdlib
BIN_PATH     = .build/release
MAN_BUILD    = .build/man

# The man pages' date: the last commit's, so one source tree always makes the same pages.
MAN_DATE    ?= $(shell git log -1 --format=%cs 2>/dev/null || date -u +%Y-%m-%d)

# The rules that go to /etc/vrules/rules: the script and its modules. rules/tests/ stays
# in the source tree (its fixtures live in examples/).
RULE_FILES  := $(shell cd rules && find . -name '*.lua' -not -path './tests/*' | sed 's|^\./||' | sort)

.PHONY: all build man install install-strip install-bin install-man install-unit install-config uninstall clean-man

all: build

build:
	$(SWIFT) build $(BUILD_FLAGS) --product vrules

# Man pages come from the command definitions themselves: swift-argument-parser's
# generate-manual tool (what `swift package plugin generate-manual` runs) reads
# `vrules --experimental-dump-help`. The tool is built from the checked-out
# swift-argument-parser, so this works offline once the packages are resolved.
man: build
	$(SWIFT) build $(BUILD_FLAGS) --product generate-manual
	rm -rf $(MAN_BUILD) && mkdir -p $(MAN_BUILD)
	$(BIN_PATH)/generate-manual $(BIN_PATH)/vrules --multi-page --date $(MAN_DATE) --output-directory $(MAN_BUILD)

install: install-bin install-man install-unit install-config

# The same, with the binary stripped of its symbol table (105 MB -> 68 MB; crash
# backtraces then show addresses only).
install-strip:
	$(MAKE) install INSTALL_BIN_FLAGS=-s

install-bin: build
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(INSTALL_BIN_FLAGS) $(BIN_PATH)/vrules $(DESTDIR)$(BINDIR)/vrules

install-man: man
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(MAN_BUILD)/*.1 $(DESTDIR)$(MANDIR)/man1/

# ExecStart needs an absolute path, and the path goes into the unit through sed:
# anything but plain path characters is refused rather than written half-quoted.
install-unit: export UNIT_BINDIR = $(BINDIR)
install-unit:
	@case "$$UNIT_BINDIR" in \
	  /*) ;; \
	  *) echo "make: BINDIR/PREFIX must be an absolute path (systemd's ExecStart needs one): $$UNIT_BINDIR" >&2; exit 1 ;; \
	esac; \
	case "$$UNIT_BINDIR" in \
	  *[!A-Za-z0-9/._+-]*) echo "make: BINDIR/PREFIX may hold only letters, digits and / . _ + -: $$UNIT_BINDIR" >&2; exit 1 ;; \
	esac
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' packaging/vrules.service.in > $(DESTDIR)$(UNITDIR)/vrules.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/vrules.service.tmp
	mv $(DESTDIR)$(UNITDIR)/vrules.service.tmp $(DESTDIR)$(UNITDIR)/vrules.service
	install -m 0644 packaging/vrules.socket $(DESTDIR)$(UNITDIR)/vrules.socket

install-config:
	install -d $(DESTDIR)$(DATADIR)/rules
	install -m 0644 packaging/vrules.toml $(DESTDIR)$(DATADIR)/vrules.toml
	for f in $(RULE_FILES); do install -D -m 0644 rules/$$f $(DESTDIR)$(DATADIR)/rules/$$f; done
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/vrules $(DESTDIR)$(SYSCONFDIR)/vrules/rules
	@set -e; \
	keep_or_install() { \
	  if [ -e "$$2" ] || [ -L "$$2" ]; then echo "kept $$2 (the shipped version is $$1)"; \
	  else install -D -m 0644 "$$1" "$$2"; echo "installed $$2"; fi; \
	}; \
	keep_or_install $(DESTDIR)$(DATADIR)/vrules.toml $(DESTDIR)$(SYSCONFDIR)/vrules/vrules.toml; \
	for f in $(RULE_FILES); do \
	  keep_or_install $(DESTDIR)$(DATADIR)/rules/$$f $(DESTDIR)$(SYSCONFDIR)/vrules/rules/$$f; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vrules $(DESTDIR)$(UNITDIR)/vrules.service $(DESTDIR)$(UNITDIR)/vrules.socket $(DESTDIR)$(MANDIR)/man1/vrules.1 $(DESTDIR)$(MANDIR)/man1/vrules.*.1
	rm -rf $(DESTDIR)$(DATADIR)
	@echo "left $(DESTDIR)$(SYSCONFDIR)/vrules in place (the operator's configuration and rules)"

clean-man:
	rm -rf $(MAN_BUILD)
