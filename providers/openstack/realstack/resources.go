package realstack

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// Flavors are the cloud's flavors: kumo's catalog names, and one no
// host of the fake driver (1,000 vCPUs, 800,000 MB) has room for.
var Flavors = []struct {
	Name             string
	VCPUs, RAM, Disk int
}{
	{"m1.tiny", 1, 512, 1}, {"m1.small", 1, 2048, 20}, {"m1.medium", 2, 4096, 40}, {"m1.large", 4, 8192, 80},
	{"m1.huge", 2000, 1000000, 100},
}

// Provider is an authenticated client of the cloud as its admin.
func (c *Cloud) Provider(ctx context.Context) (*gophercloud.ProviderClient, error) {
	return openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: c.AuthURL, Username: "admin", Password: c.Password, DomainName: "Default",
		TenantName: "admin", AllowReauth: true,
	})
}

// catalog registers the services Keystone's bootstrap does not know.
func (c *Cloud) catalog(ctx context.Context) error {
	pc, err := c.Provider(ctx)
	if err != nil {
		return err
	}
	identity, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		return err
	}
	for _, svc := range []struct {
		typ, name string
		port      int
		path      string
	}{
		{"placement", "placement", c.Ports.Placement, ""}, {"image", "glance", c.Ports.Glance, ""},
		{"network", "neutron", c.Ports.Neutron, ""}, {"compute", "nova", c.Ports.Nova, "/v2.1"},
	} {
		created, err := services.Create(ctx, identity, services.CreateOpts{Type: svc.typ, Extra: map[string]any{"name": svc.name}}).Extract()
		if err != nil {
			return fmt.Errorf("service %s: %w", svc.typ, err)
		}
		for _, iface := range []gophercloud.Availability{gophercloud.AvailabilityPublic, gophercloud.AvailabilityInternal} {
			if _, err := endpoints.Create(ctx, identity, endpoints.CreateOpts{Availability: iface, Name: svc.name, Region: "RegionOne",
				URL: "http://127.0.0.1:" + strconv.Itoa(svc.port) + svc.path, ServiceID: created.ID}).Extract(); err != nil {
				return fmt.Errorf("endpoint %s %s: %w", svc.typ, iface, err)
			}
		}
	}
	return nil
}

// resources makes what the tests use: flavors, an unlimited quota for
// the admin project, a tiny image, a tenant network with a router to an
// external one for floating IPs.
func (c *Cloud) resources(ctx context.Context) error {
	pc, err := c.Provider(ctx)
	if err != nil {
		return err
	}
	eo := gophercloud.EndpointOpts{Region: "RegionOne"}
	compute, err := openstack.NewComputeV2(pc, eo)
	if err != nil {
		return err
	}
	for _, f := range Flavors {
		disk := f.Disk
		if _, err := flavors.Create(ctx, compute, flavors.CreateOpts{Name: f.Name, VCPUs: f.VCPUs, RAM: f.RAM, Disk: &disk}).Extract(); err != nil {
			return fmt.Errorf("flavor %s: %w", f.Name, err)
		}
	}
	identity, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		return err
	}
	pages, err := projects.List(identity, projects.ListOpts{Name: "admin"}).AllPages(ctx)
	if err != nil {
		return err
	}
	admins, err := projects.ExtractProjects(pages)
	if err != nil || len(admins) != 1 {
		return fmt.Errorf("the admin project: %v", err)
	}
	unlimited := -1
	// Unlimited, so that the huge flavor meets the scheduler, not a quota.
	if _, err := quotasets.Update(ctx, compute, admins[0].ID, quotasets.UpdateOpts{Instances: &unlimited, Cores: &unlimited, RAM: &unlimited}).Extract(); err != nil {
		return fmt.Errorf("quota: %w", err)
	}

	image, err := openstack.NewImageV2(pc, eo)
	if err != nil {
		return err
	}
	img, err := images.Create(ctx, image, images.CreateOpts{Name: "cirros", DiskFormat: "raw", ContainerFormat: "bare", Visibility: ptr(images.ImageVisibilityPublic)}).Extract()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := imagedata.Upload(ctx, image, img.ID, bytes.NewReader([]byte("kumo's test image\n"))).ExtractErr(); err != nil {
		return fmt.Errorf("image data: %w", err)
	}
	c.Image = "cirros"
	// An image no flavor has disk for, as osemu.BigImage.
	big, err := images.Create(ctx, image, images.CreateOpts{Name: BigImage, DiskFormat: "raw", ContainerFormat: "bare", MinDisk: 500, Visibility: ptr(images.ImageVisibilityPublic)}).Extract()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := imagedata.Upload(ctx, image, big.ID, bytes.NewReader([]byte("kumo's big test image\n"))).ExtractErr(); err != nil {
		return fmt.Errorf("image data: %w", err)
	}

	network, err := openstack.NewNetworkV2(pc, eo)
	if err != nil {
		return err
	}
	private, err := networks.Create(ctx, network, networks.CreateOpts{Name: "private"}).Extract()
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	sub, err := subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: private.ID, Name: "private-v4", CIDR: "198.18.64.0/24", IPVersion: gophercloud.IPv4}).Extract()
	if err != nil {
		return fmt.Errorf("subnet: %w", err)
	}
	yes := true
	public, err := networks.Create(ctx, network, external.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{Name: "public"}, External: &yes}).Extract()
	if err != nil {
		return fmt.Errorf("external network: %w", err)
	}
	if _, err := subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: public.ID, Name: "public-v4", CIDR: "198.19.64.0/24", IPVersion: gophercloud.IPv4}).Extract(); err != nil {
		return fmt.Errorf("external subnet: %w", err)
	}
	router, err := routers.Create(ctx, network, routers.CreateOpts{Name: "router", GatewayInfo: &routers.GatewayInfo{NetworkID: public.ID}}).Extract()
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if _, err := routers.AddInterface(ctx, network, router.ID, routers.AddInterfaceOpts{SubnetID: sub.ID}).Extract(); err != nil {
		return fmt.Errorf("router interface: %w", err)
	}
	c.Network, c.External = "private", "public"
	return nil
}

// BigImage asks for more disk (500 GB) than any flavor has.
const BigImage = "bigdisk-500g"

func ptr[T any](v T) *T { return &v }
