// Package sizes holds the OpenStack flavors kumo knows by name: the
// openstack provider describes flavors with it (a cloud's own flavors can
// differ; kumo asks the cloud when it creates) and kumo's OpenStack
// emulator offers exactly these.
package sizes

import "github.com/kumo-dev/kumo/providers"

// Flavors are OpenStack's classic default flavors, and a GPU flavor of
// the kind university clouds add.
var Flavors = map[string]providers.Size{
	"m1.tiny":   {VCPUs: 1, MemoryGB: 0.5, DiskGB: 1},
	"m1.small":  {VCPUs: 1, MemoryGB: 2, DiskGB: 20},
	"m1.medium": {VCPUs: 2, MemoryGB: 4, DiskGB: 40},
	"m1.large":  {VCPUs: 4, MemoryGB: 8, DiskGB: 80},
	"m1.xlarge": {VCPUs: 8, MemoryGB: 16, DiskGB: 160},
	"g1.xlarge": {VCPUs: 8, MemoryGB: 64, DiskGB: 160},
}
