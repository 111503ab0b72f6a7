// Package sizes holds the EC2 instance types kumo knows, with their sizes
// and prices: the aws provider describes flavors with it and kumo's EC2
// emulator offers exactly these types.
package sizes

import "github.com/kumo-dev/kumo/providers"

// InstanceTypes are sizes and Linux on-demand prices in us-east-1 (USD
// per hour, from the EC2 pricing pages) of the types the catalog uses.
var InstanceTypes = map[string]providers.Size{
	"t3.micro":    {VCPUs: 2, MemoryGB: 1, PriceHour: 0.0104},
	"t3.small":    {VCPUs: 2, MemoryGB: 2, PriceHour: 0.0208},
	"t3.medium":   {VCPUs: 2, MemoryGB: 4, PriceHour: 0.0416},
	"t3.large":    {VCPUs: 2, MemoryGB: 8, PriceHour: 0.0832},
	"m5.large":    {VCPUs: 2, MemoryGB: 8, PriceHour: 0.096},
	"m5.xlarge":   {VCPUs: 4, MemoryGB: 16, PriceHour: 0.192},
	"m5.2xlarge":  {VCPUs: 8, MemoryGB: 32, PriceHour: 0.384},
	"c5.xlarge":   {VCPUs: 4, MemoryGB: 8, PriceHour: 0.17},
	"g4dn.xlarge": {VCPUs: 4, MemoryGB: 16, PriceHour: 0.526},
	"p3.2xlarge":  {VCPUs: 8, MemoryGB: 61, PriceHour: 3.06},
}
