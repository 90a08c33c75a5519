# The shipped configuration and default policy, installed under $(sysconfdir)/milter-policy;
# the examples go with the documentation.
policydir = $(sysconfdir)/milter-policy
dist_policy_DATA = policies/milter-policy.conf policies/default.rules
policylistsdir = $(policydir)/lists
dist_policylists_DATA = policies/lists/trusted_networks.cidr
exampledir = $(docdir)/examples
dist_example_DATA = policies/examples/greylist-lite.rules policies/examples/content.rules
