package units

import (
	"encoding/json"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/aws"
	"github.com/kumo-dev/kumo/providers/container"
	"github.com/kumo-dev/kumo/providers/local"
	"github.com/kumo-dev/kumo/providers/onprem"
	"github.com/kumo-dev/kumo/providers/openstack"
)

// FuzzFlavorCatalog reads a user's flavors file and makes a spec of
// every flavor it yields: each is refused with an error or becomes a
// spec whose fields the provider's typed spec and the resource engine
// both accept, so a bad catalog is caught at spec(), never later.
func FuzzFlavorCatalog(f *testing.F) {
	for _, s := range []string{
		"",
		"local:\n  tiny: {}\n",
		"aws:\n  small: {instance_type: t3.nano, disk_gb: 16}\n",
		"openstack:\n  gpu: {flavor: g1.large, image: ubuntu-24.04}\n",
		"onprem:\n  small: {labels: {rack: a}}\n",
		"aws:\n  small: {disk_gb: many}\n",
		"aws:\n  small: {disk_gb: 99999999999999999999999}\n",
		"aws:\n  small: {nope: 1}\n",
		"container:\n  big: {memory_mb: 2048, cpus: 2.5}\n",
		"local: [1, 2]\n",
		"aws:\n  small:\n    tags: {2: x}\n",
		"aws:\n  small: {spot: 2001-12-14}\n",
		"openstack:\n  x: &a {flavor: *a}\n",
		"aws: {small: {disk_gb: .inf}}\n",
	} {
		f.Add(s)
	}
	newSpecs := map[string]func() any{
		"local":     (&local.Provider{}).NewSpec,
		"container": (&container.Provider{}).NewSpec,
		"onprem":    (&onprem.Provider{}).NewSpec,
		"aws":       (&aws.Provider{}).NewSpec,
		"openstack": (&openstack.Provider{}).NewSpec,
	}
	f.Fuzz(func(t *testing.T, user string) {
		cat, err := parseCatalog([]byte(user), "flavors.yaml")
		if err != nil {
			return
		}
		for prov, flavors := range cat {
			newSpec := newSpecs[prov]
			if newSpec == nil {
				continue
			}
			for flavor := range flavors {
				s, err := makeSpec(cat, prov, flavor, newSpec)
				if err != nil {
					continue
				}
				fs, err := s.Fleet()
				if err != nil {
					t.Fatalf("spec(%q, %q) was made but the engine refuses it: %v", prov, flavor, err)
				}
				if err := providers.DecodeSpec(prov, fs.Fields, newSpec()); err != nil {
					t.Fatalf("spec(%q, %q) was made but its provider refuses it: %v", prov, flavor, err)
				}
				// As the state stores it and reads it back.
				raw, err := json.Marshal(fs)
				if err != nil {
					t.Fatalf("spec(%q, %q) cannot be stored: %v", prov, flavor, err)
				}
				back, err := fleet.DecodeSpec(raw)
				if err != nil {
					t.Fatalf("spec(%q, %q) stored as %s cannot be read back: %v", prov, flavor, raw, err)
				}
				if err := providers.DecodeSpec(prov, back.Fields, newSpec()); err != nil {
					t.Fatalf("spec(%q, %q) read back from the state is refused: %v", prov, flavor, err)
				}
				_ = s.String()
				for _, name := range s.AttrNames() {
					s.Attr(name)
				}
				if err := s.SetField("no_such_field", starlark.None); err == nil {
					t.Fatalf("spec(%q, %q) took an unknown field", prov, flavor)
				}
			}
		}
	})
}
