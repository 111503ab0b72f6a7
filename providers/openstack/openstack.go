// Package openstack is kumo's OpenStack provider (Nova, Neutron, Glance
// through github.com/gophercloud/gophercloud/v2).
//
// Authentication comes from clouds.yaml through gophercloud's clouds
// package (spec field cloud=, or OS_CLOUD), else from OS_* variables.
// Per unit group it creates a keypair from the group's key and a security
// group allowing SSH and the spec's ports. Nova has no idempotency token,
// so each server carries kumo:* metadata, the intent's token among it:
// before creating, and after an ambiguous failure, kumo looks the token
// up and adopts the server it finds instead of creating a second one.
package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/openstack/sizes"
)

// Metadata keys kumo sets on servers.
const (
	MetaRun   = "kumo:run"
	MetaGroup = "kumo:group"
	MetaUnit  = "kumo:unit"
	MetaToken = "kumo:token"
)

// Provider creates Nova servers.
type Provider struct {
	PollInterval time.Duration // default 2s

	clients providers.Memo[*client] // by cloud, region and Keystone address
}

// New returns the provider.
func New() *Provider { return &Provider{} }

func (p *Provider) Name() string { return "openstack" }

// Spec is an openstack spec's fields.
type Spec struct {
	Cloud           string `json:"cloud"` // a clouds.yaml entry
	Region          string `json:"region"`
	FlavorName      string `json:"flavor_name"`
	Image           string `json:"image"`   // a name or an id
	Network         string `json:"network"` // a name or an id
	Zone            string `json:"zone"`    // an availability zone; "" lets Nova choose
	VolumeSize      int    `json:"volume_size"`
	FloatingIP      bool   `json:"floating_ip"`
	FloatingNetwork string `json:"floating_network"`
	Ports           []int  `json:"ports"` // opened besides SSH
	User            string `json:"user"`
	UserData        string `json:"user_data"`
	APIRate         int    `json:"api_rate"` // requests per second

	// Where a unit made with OS_* variables lives, as Locate records it.
	CloudsFile        string `json:"clouds_file" kumo:"located"`
	AuthURL           string `json:"auth_url" kumo:"located"`
	Username          string `json:"username" kumo:"located"`
	ProjectName       string `json:"project_name" kumo:"located"`
	UserDomainName    string `json:"user_domain_name" kumo:"located"`
	ProjectDomainName string `json:"project_domain_name" kumo:"located"`
	DomainName        string `json:"domain_name" kumo:"located"`
}

func (p *Provider) NewSpec() any { return &Spec{} }

func specOf(fields map[string]any) (Spec, error) {
	return providers.ReadSpec[Spec]("openstack", fields)
}

// cloud is the clouds.yaml entry: cloud=, else OS_CLOUD.
func (s Spec) cloud() string {
	if s.Cloud != "" {
		return s.Cloud
	}
	return os.Getenv("OS_CLOUD")
}

type client struct {
	compute, network, image *gophercloud.ServiceClient
	region                  string
	access                  providers.Accesses
	flavors, images         providers.Memo[string] // ids by name

	mu   sync.Mutex
	list *serverList
	made map[string]string // token -> id of servers this process created
	poll *providers.Poller[servers.Server]
	// fips finds the floating IPs of servers deleted together with one
	// listing of ports and one of floating IPs, not two per server.
	fips *providers.Poller[[]floatingips.FloatingIP]
}

// Locate records where a spec's servers live beyond the spec: the
// clouds.yaml entry (and file) or, for OS_* authentication, the Keystone
// address, user, project and domains, and the region. Never a password:
// destroy from another shell needs OS_PASSWORD, or a clouds.yaml cloud.
func (p *Provider) Locate(fields map[string]any) map[string]any {
	s, _ := specOf(fields)
	loc := map[string]any{}
	set := func(k, v string) {
		if v != "" && fields[k] == nil {
			loc[k] = v
		}
	}
	if s.Cloud == "" {
		set("cloud", s.cloud())
	}
	if s.cloud() != "" {
		if f := os.Getenv("OS_CLIENT_CONFIG_FILE"); f != "" {
			if abs, err := filepath.Abs(f); err == nil {
				set("clouds_file", abs)
			}
		}
	} else {
		set("auth_url", os.Getenv("OS_AUTH_URL"))
		set("username", os.Getenv("OS_USERNAME"))
		project := os.Getenv("OS_PROJECT_NAME")
		if project == "" {
			project = os.Getenv("OS_TENANT_NAME")
		}
		set("project_name", project)
		set("user_domain_name", os.Getenv("OS_USER_DOMAIN_NAME"))
		set("project_domain_name", os.Getenv("OS_PROJECT_DOMAIN_NAME"))
		set("domain_name", os.Getenv("OS_DOMAIN_NAME"))
	}
	set("region", os.Getenv("OS_REGION_NAME"))
	return loc
}

// client authenticates once per cloud and region.
func (p *Provider) client(ctx context.Context, fields map[string]any) (*client, Spec, error) {
	s, err := specOf(fields)
	if err != nil {
		return nil, s, err
	}
	c, err := p.clients.Get(s.cloud()+"|"+s.Region+"|"+s.AuthURL, func() (*client, error) { return p.newClient(ctx, s) })
	return c, s, err
}

func (p *Provider) newClient(ctx context.Context, s Spec) (*client, error) {
	cloud, region, authURL := s.cloud(), s.Region, s.AuthURL
	var ao gophercloud.AuthOptions
	var eo gophercloud.EndpointOpts
	var err error
	if cloud != "" {
		opts := []clouds.ParseOption{clouds.WithCloudName(cloud)}
		if s.CloudsFile != "" {
			opts = append(opts, clouds.WithLocations(s.CloudsFile))
		}
		ao, eo, _, err = clouds.Parse(opts...)
		if err != nil {
			return nil, fmt.Errorf("openstack: cloud %s in clouds.yaml: %w", cloud, err)
		}
	} else if authURL != "" {
		// Where a unit was made with OS_* variables, as its state recorded.
		ao = passwordAuth(authURL, s.Username, os.Getenv("OS_PASSWORD"), s.ProjectName, s.DomainName, s.UserDomainName, s.ProjectDomainName)
		if ao.Password == "" {
			return nil, fmt.Errorf("openstack: no password to authenticate at %s as %s: set OS_PASSWORD (kumo never stores it), or use a clouds.yaml cloud", authURL, ao.Username)
		}
		eo.Region = os.Getenv("OS_REGION_NAME")
	} else {
		ao, err = authFromEnv()
		if err != nil {
			return nil, fmt.Errorf("openstack: no credentials: set OS_CLOUD (a clouds.yaml entry) or OS_AUTH_URL, OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (%v)", err)
		}
		eo.Region = os.Getenv("OS_REGION_NAME")
	}
	if region != "" {
		eo.Region = region
	}
	ao.AllowReauth = true
	pc, err := gopenstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("openstack: %w", err)
	}
	rate := providers.DefaultAPIRate
	if s.APIRate > 0 {
		rate = float64(s.APIRate)
	}
	// Calls wait for the request budget instead of being rate limited.
	pc.HTTPClient = *providers.RateLimitedClient(rate, max(providers.DefaultAPIBurst, rate))
	pc.MaxBackoffRetries = 10
	pc.RetryBackoffFunc = backoff
	pc.RetryFunc = retryServerErrors
	if err := gopenstack.Authenticate(ctx, pc, ao); err != nil {
		return nil, refusal("authenticating at "+ao.IdentityEndpoint, err)
	}
	c := &client{region: eo.Region, made: map[string]string{}}
	if c.compute, err = gopenstack.NewComputeV2(pc, eo); err != nil {
		return nil, fmt.Errorf("openstack: compute in region %q: %w", eo.Region, err)
	}
	if c.network, err = gopenstack.NewNetworkV2(pc, eo); err != nil {
		return nil, fmt.Errorf("openstack: network in region %q: %w", eo.Region, err)
	}
	if c.image, err = gopenstack.NewImageV2(pc, eo); err != nil {
		return nil, fmt.Errorf("openstack: image in region %q: %w", eo.Region, err)
	}
	c.poll = &providers.Poller[servers.Server]{List: c.serversByID, Interval: p.PollInterval}
	c.fips = &providers.Poller[[]floatingips.FloatingIP]{List: c.floatingIPsOf, Interval: p.PollInterval}
	return c, nil
}

// authFromEnv reads OS_* variables as an openrc file sets them, which
// name the user's and the project's domains apart (OS_USER_DOMAIN_NAME,
// OS_PROJECT_DOMAIN_NAME); gophercloud's own reader knows OS_DOMAIN_NAME
// only, and refuses an openrc from Horizon.
func authFromEnv() (gophercloud.AuthOptions, error) {
	project := os.Getenv("OS_PROJECT_NAME")
	if project == "" {
		project = os.Getenv("OS_TENANT_NAME")
	}
	if os.Getenv("OS_DOMAIN_NAME") != "" || os.Getenv("OS_DOMAIN_ID") != "" || project == "" ||
		(os.Getenv("OS_USER_DOMAIN_NAME") == "" && os.Getenv("OS_PROJECT_DOMAIN_NAME") == "") {
		return gopenstack.AuthOptionsFromEnv()
	}
	for _, v := range []string{"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD"} {
		if os.Getenv(v) == "" {
			return gophercloud.AuthOptions{}, gophercloud.ErrMissingEnvironmentVariable{EnvironmentVariable: v}
		}
	}
	return passwordAuth(os.Getenv("OS_AUTH_URL"), os.Getenv("OS_USERNAME"), os.Getenv("OS_PASSWORD"), project,
		"", os.Getenv("OS_USER_DOMAIN_NAME"), os.Getenv("OS_PROJECT_DOMAIN_NAME")), nil
}

// passwordAuth is a password login scoped to a project: the user in
// its domain, the project in its own (both the one domain if only that
// is given).
func passwordAuth(url, user, password, project, domain, userDomain, projectDomain string) gophercloud.AuthOptions {
	if userDomain == "" {
		userDomain = domain
	}
	if projectDomain == "" {
		projectDomain = userDomain
	}
	ao := gophercloud.AuthOptions{IdentityEndpoint: url, Username: user, Password: password, DomainName: userDomain}
	if project != "" {
		ao.Scope = &gophercloud.AuthScope{ProjectName: project, DomainName: projectDomain}
	}
	return ao
}

// backoff waits before retrying a 429, as Retry-After asks (at least a
// short, growing pause).
func backoff(ctx context.Context, e *gophercloud.ErrUnexpectedResponseCode, err error, retries uint) error {
	wait := time.Duration(1<<min(retries, 6)) * 50 * time.Millisecond
	if s := e.ResponseHeader.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(s); err == nil && time.Duration(secs)*time.Second > wait {
			wait = time.Duration(secs) * time.Second
		}
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryServerErrors retries 5xx answers, a few times with backoff. A
// POST that creates a server is not retried here: Nova may have created
// it; Create looks it up by token before trying again.
func retryServerErrors(ctx context.Context, method, url string, _ *gophercloud.RequestOpts, err error, n uint) error {
	var code gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &code) || code.Actual < 500 || (method == http.MethodPost && strings.HasSuffix(url, "/servers")) {
		return err
	}
	if n > 6 {
		return &gaveUp{err, code.Actual, n + 1}
	}
	select {
	case <-time.After(time.Duration(1<<n) * 50 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gaveUp is an answer the API kept giving through every retry.
type gaveUp struct {
	err   error
	code  int
	tries uint
}

func (g *gaveUp) Error() string { return g.err.Error() + g.advice() }
func (g *gaveUp) Unwrap() error { return g.err }

// advice says what happened and what to do.
func (g *gaveUp) advice() string {
	return fmt.Sprintf(" (the OpenStack API kept answering %d through %d tries; run the same command again once it recovers: nothing is made twice)", g.code, g.tries)
}

// Validate checks credentials, region, flavor, image and network before
// anything is created.
func (p *Provider) Validate(ctx context.Context, flavor string, fields map[string]any) error {
	c, s, err := p.client(ctx, fields)
	if err != nil {
		return err
	}
	if _, err := c.flavorID(ctx, s.FlavorName); err != nil {
		return err
	}
	if _, err := c.imageID(ctx, s.Image); err != nil {
		return err
	}
	if s.Network != "" {
		if _, err := c.networkID(ctx, s.Network); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) flavorID(ctx context.Context, name string) (string, error) {
	return c.flavors.Get(name, func() (string, error) { return c.lookUpFlavor(ctx, name) })
}

func (c *client) lookUpFlavor(ctx context.Context, name string) (string, error) {
	pages, err := flavors.ListDetail(c.compute, flavors.ListOpts{}).AllPages(ctx)
	if err != nil {
		return "", refusal("listing flavors", err)
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return "", err
	}
	var names []string
	for _, f := range all {
		names = append(names, f.Name)
		if f.Name == name || f.ID == name {
			return f.ID, nil
		}
	}
	slices.Sort(names) // Nova lists them in its database's order
	return "", providers.BadInputf("openstack: no flavor %q in region %q (have: %s)", name, c.region, strings.Join(names, ", "))
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (c *client) imageID(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", providers.BadInputf("openstack: the spec gives no image")
	}
	return c.images.Get(name, func() (string, error) { return c.lookUpImage(ctx, name) })
}

func (c *client) lookUpImage(ctx context.Context, name string) (string, error) {
	opts := images.ListOpts{Name: name}
	if uuidRE.MatchString(name) {
		opts = images.ListOpts{ID: name}
	}
	pages, err := images.List(c.image, opts).AllPages(ctx)
	if err != nil {
		return "", refusal("image "+name, err)
	}
	all, err := images.ExtractImages(pages)
	if err != nil {
		return "", err
	}
	for _, im := range all {
		if im.Name == name || im.ID == name {
			return im.ID, nil
		}
	}
	return "", providers.BadInputf("openstack: no image %q in region %q", name, c.region)
}

func (c *client) networkID(ctx context.Context, name string) (string, error) {
	opts := networks.ListOpts{Name: name}
	if uuidRE.MatchString(name) {
		opts = networks.ListOpts{ID: name}
	}
	pages, err := networks.List(c.network, opts).AllPages(ctx)
	if err != nil {
		return "", refusal("network "+name, err)
	}
	all, err := networks.ExtractNetworks(pages)
	if err != nil {
		return "", err
	}
	if len(all) == 0 {
		return "", providers.BadInputf("openstack: no network %q in region %q", name, c.region)
	}
	return all[0].ID, nil
}

// The calls behind providers.Accesses: a keypair, a security group.

func (c *client) ImportKeyPair(ctx context.Context, name, publicKey string) error {
	_, err := keypairs.Create(ctx, c.compute, keypairs.CreateOpts{Name: name, PublicKey: publicKey}).Extract()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		return refusal("keypair "+name, err)
	}
	return nil
}

func (c *client) SecurityGroup(ctx context.Context, name, description string) (string, error) {
	found, err := c.securityGroups(ctx, name)
	if err != nil {
		return "", err
	}
	if len(found) > 0 {
		return found[0].ID, nil
	}
	sg, err := groups.Create(ctx, c.network, groups.CreateOpts{Name: name, Description: description}).Extract()
	if err != nil {
		return "", refusal("creating security group "+name, err)
	}
	return sg.ID, nil
}

func (c *client) securityGroups(ctx context.Context, name string) ([]groups.SecGroup, error) {
	pages, err := groups.List(c.network, groups.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return nil, refusal("security group "+name, err)
	}
	return groups.ExtractGroups(pages)
}

func (c *client) Allow(ctx context.Context, groupID string, r providers.IngressRule) error {
	opts := rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: groupID,
		PortRangeMin: r.Port, PortRangeMax: r.Port, Protocol: rules.RuleProtocol(r.Protocol), RemoteIPPrefix: "0.0.0.0/0"}
	if r.FromGroup {
		opts = rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: groupID, RemoteGroupID: groupID}
	}
	_, err := rules.Create(ctx, c.network, opts).Extract()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		return fmt.Errorf("openstack: letting %s into %s: %w", r, groupID, err)
	}
	return nil
}

func (c *client) DeleteSecurityGroups(ctx context.Context, name string) error {
	sgs, err := c.securityGroups(ctx, name)
	if err != nil {
		return err
	}
	for _, sg := range sgs {
		if err := groups.Delete(ctx, c.network, sg.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return refusal("deleting security group "+name, err)
		}
	}
	return nil
}

func (c *client) KeyPairNames(ctx context.Context) ([]string, error) {
	pages, err := keypairs.List(c.compute, nil).AllPages(ctx)
	if err != nil {
		return nil, refusal("listing keypairs", err)
	}
	kps, err := keypairs.ExtractKeyPairs(pages)
	var names []string
	for _, kp := range kps {
		names = append(names, kp.Name)
	}
	return names, err
}

func (c *client) DeleteKeyPair(ctx context.Context, name string) error {
	if err := keypairs.Delete(ctx, c.compute, name, nil).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return refusal("deleting keypair "+name, err)
	}
	return nil
}

// findByToken returns the server that carries token in its metadata.
// The nodes of a unit look themselves up at the same moment, so one
// listing serves them all (see listing); a server made under a token is
// never missed, since only this process, holding the run's lock, makes
// servers for it, and it looks before it makes.
func (c *client) findByToken(ctx context.Context, token string) (*servers.Server, error) {
	c.mu.Lock()
	made := c.made[token]
	c.mu.Unlock()
	if made != "" {
		srv, err := servers.Get(ctx, c.compute, made).Extract()
		if err == nil {
			return srv, nil
		}
	}
	all, err := c.listing(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Metadata[MetaToken] == token {
			return &all[i], nil
		}
	}
	return nil, nil
}

// listing lists the servers, sharing one call among the callers that
// ask within the same short window.
func (c *client) listing(ctx context.Context) ([]servers.Server, error) {
	c.mu.Lock()
	if c.list != nil && time.Since(c.list.at) < listWindow {
		l := c.list
		c.mu.Unlock()
		<-l.done
		return l.servers, l.err
	}
	l := &serverList{at: time.Now(), done: make(chan struct{})}
	c.list = l
	c.mu.Unlock()
	l.servers, l.err = c.allServers(ctx)
	close(l.done)
	return l.servers, l.err
}

// listWindow is how long a server listing is shared.
const listWindow = 500 * time.Millisecond

type serverList struct {
	at      time.Time
	done    chan struct{}
	servers []servers.Server
	err     error
}

// forgetListing makes the next lookup list the servers afresh.
func (c *client) forgetListing() {
	c.mu.Lock()
	c.list = nil
	c.mu.Unlock()
}

func serverName(req providers.NodeRequest) string { return req.Run + "-" + req.Group + "-" + req.Name }

// Create makes the node's server, or adopts the one made under its token.
func (p *Provider) Create(ctx context.Context, req providers.NodeRequest) (providers.Instance, error) {
	c, s, err := p.client(ctx, req.Spec)
	if err != nil {
		return providers.Instance{}, err
	}
	srv, err := c.findByToken(ctx, req.Token)
	if err != nil {
		return providers.Instance{}, err
	}
	if srv == nil {
		if srv, err = c.createServer(ctx, req, s); err != nil {
			return providers.Instance{}, err
		}
	}
	active, err := c.wait(ctx, srv.ID, "ACTIVE")
	if providers.IsCapacity(err) {
		// A server the scheduler found no host for holds nothing but a
		// place in the quota: gone, so that trying elsewhere leaves
		// nothing behind.
		if derr := servers.Delete(ctx, c.compute, srv.ID).ExtractErr(); derr == nil {
			c.wait(ctx, srv.ID, deleted)
		}
		return providers.Instance{}, err
	}
	if err != nil {
		return providers.Instance{}, err
	}
	if s.FloatingIP {
		if err := c.ensureFloatingIP(ctx, active.ID, s.FloatingNetwork); err != nil {
			return providers.Instance{}, err
		}
		if active, err = servers.Get(ctx, c.compute, active.ID).Extract(); err != nil {
			return providers.Instance{}, err
		}
	}
	return instance(*active, s, req.Spec), nil
}

func (c *client) createServer(ctx context.Context, req providers.NodeRequest, s Spec) (*servers.Server, error) {
	name := serverName(req)
	flavorID, err := c.flavorID(ctx, s.FlavorName)
	if err != nil {
		return nil, err
	}
	imageID, err := c.imageID(ctx, s.Image)
	if err != nil {
		return nil, err
	}
	g, err := c.access.Ensure(ctx, c, req.Run, req.Group, req.AuthorizedKey, s.Ports)
	if err != nil {
		return nil, err
	}
	opts := servers.CreateOpts{
		Name: name, FlavorRef: flavorID, ImageRef: imageID, SecurityGroups: []string{providers.GroupName(req.Run, req.Group)},
		Metadata: map[string]string{MetaRun: req.Run, MetaGroup: req.Group, MetaUnit: req.Unit, MetaToken: req.Token},
	}
	if s.UserData != "" {
		opts.UserData = []byte(s.UserData)
	}
	opts.AvailabilityZone = s.Zone
	if s.Network != "" {
		id, err := c.networkID(ctx, s.Network)
		if err != nil {
			return nil, err
		}
		opts.Networks = []servers.Network{{UUID: id}}
	}
	if s.VolumeSize > 0 {
		opts.ImageRef = ""
		opts.BlockDevice = []servers.BlockDevice{{BootIndex: 0, UUID: imageID, SourceType: servers.SourceImage,
			DestinationType: servers.DestinationVolume, VolumeSize: s.VolumeSize, DeleteOnTermination: true}}
	}
	for attempt := 0; ; attempt++ {
		srv, err := servers.Create(ctx, c.compute, keypairs.CreateOptsExt{CreateOptsBuilder: opts, KeyName: g.KeyPair}, nil).Extract()
		if err == nil {
			c.mu.Lock()
			c.made[req.Token] = srv.ID
			c.list = nil // listings taken before it are stale now
			c.mu.Unlock()
			return srv, nil
		}
		var code gophercloud.ErrUnexpectedResponseCode
		if attempt >= 4 || !errors.As(err, &code) || code.Actual < 500 {
			return nil, refusal("creating "+name, err)
		}
		// A 5xx may hide a server that was made: adopt it if so.
		c.forgetListing()
		if found, ferr := c.findByToken(ctx, req.Token); ferr == nil && found != nil {
			return found, nil
		}
		time.Sleep(time.Duration(1<<attempt) * 100 * time.Millisecond)
	}
}

// refusal is the error of an API call made for doing: a refusal in the
// API's own words and code (a 400 is the spec's mistake: bad input;
// Nova's quota a capacity error), anything else as gophercloud says it.
func refusal(doing string, err error) error {
	var code gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &code) {
		return fmt.Errorf("openstack: %s: %w", doing, err)
	}
	// OpenStack's fault bodies: {"badRequest": {"code": 400, "message": ...}},
	// Neutron's {"NeutronError": {"message": ...}}.
	var body map[string]struct {
		Message string `json:"message"`
	}
	msg := ""
	if json.Unmarshal(code.Body, &body) == nil {
		for _, f := range body {
			msg = f.Message
		}
	}
	if msg == "" {
		return fmt.Errorf("openstack: %s: %w", doing, err)
	}
	said := &refused{fmt.Sprintf("openstack: %s: the cloud refused (HTTP %d): %s", doing, code.Actual, msg), err}
	if g := (*gaveUp)(nil); errors.As(err, &g) {
		said.msg += g.advice()
	}
	switch {
	case code.Actual == http.StatusBadRequest:
		return &providers.BadInputError{Err: said}
	case code.Actual == http.StatusForbidden && strings.Contains(msg, "Quota exceeded"):
		return &providers.CapacityError{Err: said}
	}
	return said
}

// refused says an API's refusal in its own words; the error beneath is
// gophercloud's, for callers that ask its code.
type refused struct {
	msg string
	err error
}

func (r *refused) Error() string { return r.msg }
func (r *refused) Unwrap() error { return r.err }

// ensureFloatingIP gives the server a floating IP unless it has one.
func (c *client) ensureFloatingIP(ctx context.Context, serverID, netName string) error {
	if netName == "" {
		netName = "public"
	}
	pp, err := ports.List(c.network, ports.ListOpts{DeviceID: serverID}).AllPages(ctx)
	if err != nil {
		return refusal("ports of "+serverID, err)
	}
	plist, err := ports.ExtractPorts(pp)
	if err != nil || len(plist) == 0 {
		return fmt.Errorf("openstack: server %s has no port for a floating IP (%v)", serverID, err)
	}
	fp, err := floatingips.List(c.network, floatingips.ListOpts{PortID: plist[0].ID}).AllPages(ctx)
	if err != nil {
		return err
	}
	if have, _ := floatingips.ExtractFloatingIPs(fp); len(have) > 0 {
		return nil
	}
	ext, err := c.networkID(ctx, netName)
	if err != nil {
		return err
	}
	if _, err := floatingips.Create(ctx, c.network, floatingips.CreateOpts{FloatingNetworkID: ext, PortID: plist[0].ID}).Extract(); err != nil {
		return fmt.Errorf("openstack: floating IP for %s: %w", serverID, err)
	}
	return nil
}

// releaseFloatingIPs deletes the server's floating IPs.
func (c *client) releaseFloatingIPs(ctx context.Context, serverID string) error {
	fips, err := c.fips.Wait(ctx, serverID, func([]floatingips.FloatingIP, bool) (bool, error) { return true, nil })
	if err != nil {
		return err
	}
	for _, f := range fips {
		if err := floatingips.Delete(ctx, c.network, f.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return fmt.Errorf("openstack: releasing floating IP %s: %w", f.FloatingIP, err)
		}
	}
	return nil
}

// floatingIPsOf lists the floating IPs of the servers ids, by server,
// through their ports: one listing of each for all of them.
func (c *client) floatingIPsOf(ctx context.Context, ids []string) (map[string][]floatingips.FloatingIP, error) {
	want := map[string]bool{}
	out := map[string][]floatingips.FloatingIP{}
	for _, id := range ids {
		want[id], out[id] = true, nil
	}
	pp, err := ports.List(c.network, ports.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	plist, _ := ports.ExtractPorts(pp)
	device := map[string]string{}
	for _, port := range plist {
		if want[port.DeviceID] {
			device[port.ID] = port.DeviceID
		}
	}
	fp, err := floatingips.List(c.network, floatingips.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, _ := floatingips.ExtractFloatingIPs(fp)
	for _, f := range all {
		if server, ok := device[f.PortID]; ok {
			out[server] = append(out[server], f)
		}
	}
	return out, nil
}

// instance is kumo's view of a server; fields locate it again.
func instance(srv servers.Server, s Spec, fields map[string]any) providers.Instance {
	inst := providers.Instance{ID: srv.ID, Token: srv.Metadata[MetaToken], Port: 22, User: s.User, Location: fields}
	if inst.User == "" {
		inst.User = "ubuntu"
	}
	for _, list := range srv.Addresses {
		addrs, _ := list.([]any)
		for _, a := range addrs {
			m, _ := a.(map[string]any)
			addr, _ := m["addr"].(string)
			switch m["OS-EXT-IPS:type"] {
			case "floating":
				inst.IP = addr
			default:
				if inst.PrivateIP == "" {
					inst.PrivateIP = addr
				}
			}
		}
	}
	if inst.IP == "" {
		inst.IP = inst.PrivateIP
	}
	if port, err := strconv.Atoi(srv.Metadata[providers.EmulatorPortKey]); err == nil {
		inst.Port = port
	}
	switch srv.Status {
	case "ACTIVE":
		inst.State = providers.Running
	case "BUILD":
		inst.State = providers.Starting
	case "SHUTOFF":
		inst.State = providers.PowerOff
	default:
		inst.State = providers.Error
	}
	return inst
}

// Find looks the node up by its token.
func (p *Provider) Find(ctx context.Context, ref providers.Ref) (providers.Instance, bool, error) {
	c, s, err := p.client(ctx, ref.Spec)
	if err != nil {
		return providers.Instance{}, false, err
	}
	c.forgetListing()
	srv, err := c.findByToken(ctx, ref.Token)
	if err != nil || srv == nil {
		return providers.Instance{}, false, err
	}
	return instance(*srv, s, ref.Spec), true, nil
}

// Delete releases the server's floating IPs, deletes it and waits until
// it is gone.
func (p *Provider) Delete(ctx context.Context, ref providers.Ref) error {
	c, _, err := p.client(ctx, ref.Spec)
	if err != nil {
		return err
	}
	if err := c.releaseFloatingIPs(ctx, ref.ID); err != nil {
		return err
	}
	err = servers.Delete(ctx, c.compute, ref.ID).ExtractErr()
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return refusal("deleting "+ref.ID, err)
	}
	_, err = c.wait(ctx, ref.ID, deleted)
	return err
}

// PowerOff stops the server and waits for SHUTOFF.
func (p *Provider) PowerOff(ctx context.Context, ref providers.Ref) error {
	c, _, err := p.client(ctx, ref.Spec)
	if err != nil {
		return err
	}
	if err := servers.Stop(ctx, c.compute, ref.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		return refusal("stopping "+ref.ID, err)
	}
	_, err = c.wait(ctx, ref.ID, "SHUTOFF")
	return err
}

// PowerOn starts the server and waits for ACTIVE.
func (p *Provider) PowerOn(ctx context.Context, ref providers.Ref) (providers.Instance, error) {
	c, s, err := p.client(ctx, ref.Spec)
	if err != nil {
		return providers.Instance{}, err
	}
	if err := servers.Start(ctx, c.compute, ref.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		return providers.Instance{}, refusal("starting "+ref.ID, err)
	}
	srv, err := c.wait(ctx, ref.ID, "ACTIVE")
	if err != nil {
		return providers.Instance{}, err
	}
	return instance(*srv, s, ref.Spec), nil
}

// List returns the run's servers in the clouds its units used.
func (p *Provider) List(ctx context.Context, run string, specs []map[string]any) ([]providers.Instance, error) {
	var out []providers.Instance
	err := providers.ForEachClient(specs, p.opener(ctx), func(c *client, fields map[string]any) error {
		all, err := c.allServers(ctx)
		if err != nil {
			return err
		}
		s, _ := specOf(fields)
		for _, srv := range all {
			if srv.Metadata[MetaRun] == run {
				out = append(out, instance(srv, s, fields))
			}
		}
		return nil
	})
	return out, err
}

// opener is p.client bound to ctx, for providers.ForEachClient.
func (p *Provider) opener(ctx context.Context) func(map[string]any) (*client, error) {
	return func(fields map[string]any) (*client, error) {
		c, _, err := p.client(ctx, fields)
		return c, err
	}
}

func (c *client) allServers(ctx context.Context) ([]servers.Server, error) {
	pages, err := servers.List(c.compute, servers.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, refusal("listing servers", err)
	}
	return servers.ExtractServers(pages)
}

// serversByID is the poller's listing. Nova lists every server in one
// call, so it does not narrow to the ids asked about.
func (c *client) serversByID(ctx context.Context, _ []string) (map[string]servers.Server, error) {
	all, err := c.allServers(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]servers.Server, len(all))
	for _, srv := range all {
		out[srv.ID] = srv
	}
	return out, nil
}

// deleted is the status kumo waits for when a server is to be gone.
const deleted = "DELETED"

// wait returns the server once its status is status (deleted: once it is
// gone), or fails when it goes to ERROR or disappears.
func (c *client) wait(ctx context.Context, id, status string) (*servers.Server, error) {
	srv, err := c.poll.Wait(ctx, id, func(srv servers.Server, found bool) (bool, error) {
		switch {
		case !found && status == deleted:
			return true, nil
		case !found:
			return false, fmt.Errorf("openstack: server %s disappeared while waiting for %s", id, status)
		case srv.Status == status:
			return true, nil
		case srv.Status == "ERROR":
			return false, c.faultOf(ctx, srv)
		}
		return false, nil
	})
	return &srv, err
}

// faultOf is why a server went to ERROR, as Nova says it. Nova's list
// of servers leaves the fault out (a server's own view has it), so it
// is asked of the server when the listing has none.
func (c *client) faultOf(ctx context.Context, srv servers.Server) error {
	fault := srv.Fault
	if fault.Message == "" {
		if got, err := servers.Get(ctx, c.compute, srv.ID).Extract(); err == nil {
			fault = got.Fault
		}
	}
	msg := strings.TrimSpace(fault.Message)
	if fault.Code != 0 {
		msg = fmt.Sprintf("%s (Nova's fault %d)", msg, fault.Code)
	}
	err := fmt.Errorf("openstack: server %s went to ERROR: %s", srv.ID, msg)
	if strings.Contains(fault.Message, "No valid host was found") {
		// The scheduler found no room for the flavor.
		return &providers.CapacityError{Err: err}
	}
	return err
}

// DeleteGroup deletes the group's security group and keypair once its
// servers are gone.
func (p *Provider) DeleteGroup(ctx context.Context, run, group string, specs []map[string]any) error {
	return providers.ForEachClient(specs, p.opener(ctx), func(c *client, _ map[string]any) error {
		all, err := c.allServers(ctx)
		if err != nil {
			return err
		}
		for _, srv := range all {
			if srv.Metadata[MetaRun] == run && srv.Metadata[MetaGroup] == group {
				if _, err := c.wait(ctx, srv.ID, deleted); err != nil {
					return err
				}
			}
		}
		return c.access.Remove(ctx, c, run, group)
	})
}

// Describe gives the size of a spec's servers, where known.
func (p *Provider) Describe(fields map[string]any) providers.Size {
	s, _ := specOf(fields)
	size := sizes.Flavors[s.FlavorName]
	if s.VolumeSize > 0 {
		size.DiskGB = s.VolumeSize
	}
	return size
}
