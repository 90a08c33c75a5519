# Packaging: man pages, Debian and RPM packaging, systemd unit, MTA snippets.
dist_man_MANS += \
	packaging/man/milter-policy.8 \
	packaging/man/milter-policy.conf.5 \
	packaging/man/milter-policy.rules.5

EXTRA_DIST += \
	packaging/README-sections.md \
	packaging/build-deb.sh \
	packaging/ci-deb.sh \
	packaging/install-deps \
	packaging/debian/changelog \
	packaging/debian/control \
	packaging/debian/copyright \
	packaging/debian/docs \
	packaging/debian/milter-policy.default \
	packaging/debian/postinst \
	packaging/debian/postrm \
	packaging/debian/rules \
	packaging/debian/source/format \
	packaging/rpm/milter-policy.spec \
	packaging/postfix/main.cf.snippet \
	packaging/sendmail/milter-policy.mc \
	packaging/systemd/milter-policy.service \
	packaging/systemd/milter-policy-socketdir
