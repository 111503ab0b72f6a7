package openstack

import "github.com/kumo-dev/kumo/providers"

// classicFlavors are the sizes of OpenStack's classic default flavors;
// a cloud's own flavors can differ (kumo asks the cloud when it creates).
var classicFlavors = map[string]providers.Size{
	"m1.tiny":   {VCPUs: 1, MemoryGB: 0.5, DiskGB: 1},
	"m1.small":  {VCPUs: 1, MemoryGB: 2, DiskGB: 20},
	"m1.medium": {VCPUs: 2, MemoryGB: 4, DiskGB: 40},
	"m1.large":  {VCPUs: 4, MemoryGB: 8, DiskGB: 80},
	"m1.xlarge": {VCPUs: 8, MemoryGB: 16, DiskGB: 160},
}

// Describe gives the size of a spec's servers, where known.
func (p *Provider) Describe(spec map[string]any) providers.Size {
	s := classicFlavors[providers.SpecString(spec, "flavor_name")]
	if gb := providers.SpecInt(spec, "volume_size"); gb > 0 {
		s.DiskGB = gb
	}
	return s
}
