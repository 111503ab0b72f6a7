// Package aws is kumo's Amazon EC2 provider (github.com/aws/aws-sdk-go-v2).
//
// Credentials, profile and region come from the SDK's default chain
// (spec fields region= and profile= override them); endpoint= or
// AWS_ENDPOINT_URL_EC2 points it at another endpoint, such as kumo's own
// emulator (providers/aws/ec2emu, `kumo emulate aws`). Per unit group it
// imports the group's key as a key pair and makes a security group that
// allows SSH and the spec's ports. Each node is one RunInstances call
// whose ClientToken is the node's intent token, so that a run resumed
// after a crash gets the instance back instead of launching another.
package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/aws/sizes"
)

// Tags kumo puts on what it makes.
const (
	TagRun   = "kumo:run"
	TagGroup = "kumo:group"
	TagUnit  = "kumo:unit"
	TagNode  = "kumo:node"
)

// Provider launches EC2 instances.
type Provider struct {
	// PollInterval is how often instance states are polled (default 2s).
	PollInterval time.Duration

	clients providers.Memo[*client] // by region, profile and endpoint
}

// New returns the provider.
func New() *Provider { return &Provider{} }

func (p *Provider) Name() string { return "aws" }

// Spec is an aws spec's fields.
type Spec struct {
	Region       string   `json:"region"`
	Profile      string   `json:"profile"`
	Endpoint     string   `json:"endpoint"`
	InstanceType string   `json:"instance_type"`
	Image        string   `json:"image"` // an AMI id, or a name (its newest image)
	VolumeSize   int      `json:"volume_size"`
	VolumeType   string   `json:"volume_type"`
	SubnetID     string   `json:"subnet_id"`
	Zone         string   `json:"zone"`         // an availability zone (us-east-1b); "" lets EC2 choose
	IPAddresses  []string `json:"ip_addresses"` // one private address per node, in order
	UserData     string   `json:"user_data"`
	Spot         bool     `json:"spot"`
	Ports        []int    `json:"ports"` // opened besides SSH
	User         string   `json:"user"`
	APIRate      int      `json:"api_rate"` // requests per second
}

func (p *Provider) NewSpec() any { return &Spec{} }

func specOf(fields map[string]any) (Spec, error) { return providers.ReadSpec[Spec]("aws", fields) }

// endpoint is where the spec's EC2 API is: endpoint=, else the SDK's
// variables.
func (s Spec) endpoint() string {
	for _, e := range []string{s.Endpoint, os.Getenv("AWS_ENDPOINT_URL_EC2"), os.Getenv("AWS_ENDPOINT_URL")} {
		if e != "" {
			return e
		}
	}
	return ""
}

// client is an EC2 client for one region/profile/endpoint, with what it
// has looked up and made, and its shared state poller.
type client struct {
	ec2    *ec2.Client
	region string
	access providers.Accesses
	images providers.Memo[string] // AMI id by name
	poll   *providers.Poller[types.Instance]
}

// Locate records where a spec's instances live beyond the spec: the
// region (resolved as the SDK would: AWS_REGION, the profile's region),
// the endpoint (AWS_ENDPOINT_URL_EC2 or AWS_ENDPOINT_URL) and the
// profile (AWS_PROFILE). Never keys: destroy from another shell still
// finds credentials where the SDK looks (~/.aws, the environment).
func (p *Provider) Locate(fields map[string]any) map[string]any {
	s, _ := specOf(fields)
	loc := map[string]any{}
	if s.Profile == "" && os.Getenv("AWS_PROFILE") != "" {
		loc["profile"] = os.Getenv("AWS_PROFILE")
	}
	if s.Endpoint == "" && s.endpoint() != "" {
		loc["endpoint"] = s.endpoint()
	}
	if s.Region == "" {
		opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
		if s.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(s.Profile))
		}
		if cfg, err := config.LoadDefaultConfig(context.Background(), opts...); err == nil && cfg.Region != "" {
			loc["region"] = cfg.Region
		}
	}
	return loc
}

// client returns the EC2 client for the spec's fields, failing clearly
// without credentials or a region.
func (p *Provider) client(ctx context.Context, fields map[string]any) (*client, Spec, error) {
	s, err := specOf(fields)
	if err != nil {
		return nil, s, err
	}
	c, err := p.clients.Get(s.Region+"|"+s.Profile+"|"+s.endpoint(), func() (*client, error) { return p.newClient(ctx, s) })
	return c, s, err
}

func (p *Provider) newClient(ctx context.Context, s Spec) (*client, error) {
	rate := providers.DefaultAPIRate
	if s.APIRate > 0 {
		rate = float64(s.APIRate)
	}
	opts := []func(*config.LoadOptions) error{
		// The SDK's own log lines (IMDS fallbacks, retries) are not the
		// user's business: kumo says what failed in its own words.
		config.WithLogger(logging.Nop{}),
		config.WithClientLogMode(0),
		config.WithRetryer(func() aws.Retryer {
			// Throttling and 5xx are retried with backoff. The client-side
			// retry quota is off: a burst of throttled calls from many
			// nodes at once must back off, not give up.
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = 10 * time.Second
				o.Backoff = retry.BackoffDelayerFunc(equalJitter)
				o.RateLimiter = ratelimit.None
				// A refused connection means nothing listens there: the
				// endpoint is wrong or down, and ten tries with backoff
				// would only make the user wait a minute to hear it.
				o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
					if errors.Is(err, syscall.ECONNREFUSED) {
						return aws.FalseTernary
					}
					// No capacity (a 500 for EC2) is not a bad spell: asking
					// again for a minute only delays trying elsewhere.
					var ae smithy.APIError
					if errors.As(err, &ae) && capacityCodes[ae.ErrorCode()] {
						return aws.FalseTernary
					}
					return aws.UnknownTernary
				})}, o.Retryables...)
			})
		}),
	}
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	if s.endpoint() != "" {
		// An emulator or another custom endpoint: the instance metadata
		// service (169.254.169.254) has no credentials for it, and asking
		// would reach out of this machine.
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: loading configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("aws: no region: give region= in the spec, or set AWS_REGION or a profile's region")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		tried := "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the shared files (" + sharedFiles() + ", profile " + profileName(s) + "), SSO and credential_process in that profile, ECS container credentials"
		if s.endpoint() == "" {
			tried += ", the EC2 instance metadata service"
		} else {
			tried += " (not the instance metadata service: the endpoint is " + s.endpoint() + ")"
		}
		return nil, fmt.Errorf("aws: no credentials; tried %s. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or configure ~/.aws (%v)", tried, err)
	}
	c := &client{region: cfg.Region}
	c.ec2 = ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if e := s.endpoint(); e != "" {
			o.BaseEndpoint = aws.String(e)
		}
		// Calls wait for the request budget instead of being throttled.
		o.HTTPClient = providers.RateLimitedDoer(o.HTTPClient, rate, max(providers.DefaultAPIBurst, rate))
	})
	c.poll = &providers.Poller[types.Instance]{List: c.instances, Interval: p.PollInterval}
	return c, nil
}

// sharedFiles names the files the SDK reads credentials from.
func sharedFiles() string {
	creds, conf := os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), os.Getenv("AWS_CONFIG_FILE")
	if creds == "" {
		creds = "~/.aws/credentials"
	}
	if conf == "" {
		conf = "~/.aws/config"
	}
	return creds + ", " + conf
}

func profileName(s Spec) string {
	switch {
	case s.Profile != "":
		return s.Profile
	case os.Getenv("AWS_PROFILE") != "":
		return os.Getenv("AWS_PROFILE")
	}
	return "default"
}

// Validate checks credentials, region, instance type and image before
// anything is created.
func (p *Provider) Validate(ctx context.Context, flavor string, fields map[string]any) error {
	c, s, err := p.client(ctx, fields)
	if err != nil {
		return err
	}
	if s.InstanceType == "" {
		return fmt.Errorf("aws: flavor %s sets no instance_type", flavor)
	}
	if _, err := c.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(s.InstanceType)}}); err != nil {
		return fmt.Errorf("aws: instance type %s in %s: %w", s.InstanceType, c.region, explain(err))
	}
	_, err = c.image(ctx, s.Image)
	return err
}

// capacityCodes are EC2's answers that there is no room: in the zone for
// the instance type, or in the account's quotas.
var capacityCodes = map[string]bool{
	"InsufficientInstanceCapacity": true, "InstanceLimitExceeded": true, "VcpuLimitExceeded": true,
	"InsufficientCapacity": true, "UnfulfillableCapacity": true, "MaxSpotInstanceCountExceeded": true,
}

// explain turns an API error into its code and message, and says what
// to do when EC2 kept throttling or failing through every retry.
func explain(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "RequestLimitExceeded", "Throttling", "ThrottlingException", "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable":
			return fmt.Errorf("%s: %s (EC2 kept answering so through %d tries; run the same command again once it recovers: nothing is made twice)",
				ae.ErrorCode(), ae.ErrorMessage(), maxAttempts)
		}
		if capacityCodes[ae.ErrorCode()] {
			return &providers.CapacityError{Err: fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())}
		}
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

// maxAttempts is how many times a throttled or failed call is tried.
const maxAttempts = 10

// equalJitter waits before retry attempt: half of the exponential delay
// (200 ms doubling, at most 10 s) fixed, half random. The SDK's full
// jitter may spend all the tries in a few seconds; this way the tries
// span at least about 20 s, so a short bad spell of the cloud is ridden
// out, and callers retrying together still spread out.
// retryBase is the first retry's pause, doubled each try (a variable for
// the tests, whose emulator throttles on purpose).
var retryBase = 200 * time.Millisecond

func equalJitter(attempt int, _ error) (time.Duration, error) {
	d := min(retryBase<<min(attempt, 10), 10*time.Second)
	return d/2 + time.Duration(rand.Int63n(int64(d/2)+1)), nil
}

// image resolves an AMI id, or a name (newest image of that name).
func (c *client) image(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", errors.New("aws: the spec gives no image (an AMI id or name)")
	}
	return c.images.Get(name, func() (string, error) { return c.lookUpImage(ctx, name) })
}

func (c *client) lookUpImage(ctx context.Context, name string) (string, error) {
	in := &ec2.DescribeImagesInput{}
	if strings.HasPrefix(name, "ami-") {
		in.ImageIds = []string{name}
	} else {
		in.Filters = []types.Filter{{Name: aws.String("name"), Values: []string{name}}}
	}
	out, err := c.ec2.DescribeImages(ctx, in)
	if err != nil {
		return "", fmt.Errorf("aws: image %s: %w", name, explain(err))
	}
	if len(out.Images) == 0 {
		return "", providers.BadInputf("aws: no image named %s in %s", name, c.region)
	}
	sort.Slice(out.Images, func(i, j int) bool {
		return aws.ToString(out.Images[i].CreationDate) > aws.ToString(out.Images[j].CreationDate)
	})
	return aws.ToString(out.Images[0].ImageId), nil
}

// The calls behind providers.Accesses: a key pair, a security group.

func (c *client) ImportKeyPair(ctx context.Context, name, publicKey string) error {
	_, err := c.ec2.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(name), PublicKeyMaterial: []byte(publicKey)})
	if err != nil && !hasCode(err, "InvalidKeyPair.Duplicate") {
		return fmt.Errorf("aws: importing key pair %s: %w", name, explain(err))
	}
	return nil
}

func (c *client) SecurityGroup(ctx context.Context, name, description string) (string, error) {
	sg, err := c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(description)})
	switch {
	case err == nil:
		return aws.ToString(sg.GroupId), nil
	case hasCode(err, "InvalidGroup.Duplicate"):
		out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{name}})
		if err != nil || len(out.SecurityGroups) == 0 {
			return "", fmt.Errorf("aws: finding security group %s: %w", name, explain(err))
		}
		return aws.ToString(out.SecurityGroups[0].GroupId), nil
	default:
		return "", fmt.Errorf("aws: creating security group %s: %w", name, explain(err))
	}
}

func (c *client) Allow(ctx context.Context, groupID string, r providers.IngressRule) error {
	perm := types.IpPermission{IpProtocol: aws.String(r.Protocol), FromPort: aws.Int32(int32(r.Port)), ToPort: aws.Int32(int32(r.Port)),
		IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}
	if r.FromGroup {
		perm = types.IpPermission{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(groupID)}}}
	}
	_, err := c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(groupID), IpPermissions: []types.IpPermission{perm}})
	if err != nil && !hasCode(err, "InvalidPermission.Duplicate") {
		return fmt.Errorf("aws: letting %s into %s: %w", r, groupID, explain(err))
	}
	return nil
}

func (c *client) DeleteSecurityGroups(ctx context.Context, name string) error {
	sgs, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil {
		return fmt.Errorf("aws: %w", explain(err))
	}
	for _, sg := range sgs.SecurityGroups {
		if _, err := c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err != nil && !hasCode(err, "InvalidGroup.NotFound") {
			return fmt.Errorf("aws: deleting security group %s: %w", name, explain(err))
		}
	}
	return nil
}

func (c *client) KeyPairNames(ctx context.Context) ([]string, error) {
	keys, err := c.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		return nil, fmt.Errorf("aws: listing key pairs: %w", explain(err))
	}
	var names []string
	for _, k := range keys.KeyPairs {
		names = append(names, aws.ToString(k.KeyName))
	}
	return names, nil
}

func (c *client) DeleteKeyPair(ctx context.Context, name string) error {
	if _, err := c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(name)}); err != nil && !hasCode(err, "InvalidKeyPair.NotFound") {
		return fmt.Errorf("aws: deleting key pair %s: %w", name, explain(err))
	}
	return nil
}

func hasCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// Create launches the node's instance (or gets it back by its
// ClientToken) and waits until it runs.
func (p *Provider) Create(ctx context.Context, req providers.NodeRequest) (providers.Instance, error) {
	c, s, err := p.client(ctx, req.Spec)
	if err != nil {
		return providers.Instance{}, err
	}
	imageID, err := c.image(ctx, s.Image)
	if err != nil {
		return providers.Instance{}, err
	}
	g, err := c.access.Ensure(ctx, c, req.Run, req.Group, req.AuthorizedKey, s.Ports)
	if err != nil {
		return providers.Instance{}, err
	}
	in := &ec2.RunInstancesInput{
		ImageId: aws.String(imageID), InstanceType: types.InstanceType(s.InstanceType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String(req.Token),
		KeyName: aws.String(g.KeyPair), SecurityGroupIds: []string{g.SecurityGroup},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String("Name"), Value: aws.String(req.Group + "/" + req.Name)},
			{Key: aws.String(TagRun), Value: aws.String(req.Run)}, {Key: aws.String(TagGroup), Value: aws.String(req.Group)},
			{Key: aws.String(TagUnit), Value: aws.String(req.Unit)}, {Key: aws.String(TagNode), Value: aws.String(req.Name)},
		}}},
	}
	if s.Zone != "" {
		in.Placement = &types.Placement{AvailabilityZone: aws.String(s.Zone)}
	}
	if s.SubnetID != "" {
		in.SubnetId = aws.String(s.SubnetID)
	}
	if req.Index >= 1 && req.Index <= len(s.IPAddresses) {
		in.PrivateIpAddress = aws.String(s.IPAddresses[req.Index-1])
	}
	if s.UserData != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(s.UserData)))
	}
	if s.VolumeSize > 0 {
		ebs := &types.EbsBlockDevice{VolumeSize: aws.Int32(int32(s.VolumeSize)), DeleteOnTermination: aws.Bool(true)}
		if s.VolumeType != "" {
			ebs.VolumeType = types.VolumeType(s.VolumeType)
		}
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: ebs}}
	}
	if s.Spot {
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}
	}
	out, err := c.ec2.RunInstances(ctx, in)
	if err != nil {
		return providers.Instance{}, fmt.Errorf("aws: launching %s: %w", req.Name, explain(err))
	}
	if len(out.Instances) == 0 {
		return providers.Instance{}, fmt.Errorf("aws: launching %s: no instance in the reservation", req.Name)
	}
	inst, err := c.wait(ctx, aws.ToString(out.Instances[0].InstanceId), types.InstanceStateNameRunning)
	if err != nil {
		return providers.Instance{}, err
	}
	return instance(inst, s, req.Spec), nil
}

// instance is kumo's view of an EC2 instance; fields locate it again.
func instance(i types.Instance, s Spec, fields map[string]any) providers.Instance {
	inst := providers.Instance{ID: aws.ToString(i.InstanceId), Token: aws.ToString(i.ClientToken), Port: 22,
		IP: aws.ToString(i.PublicIpAddress), PrivateIP: aws.ToString(i.PrivateIpAddress), User: s.User, Location: fields}
	if inst.IP == "" {
		inst.IP = inst.PrivateIP
	}
	if inst.User == "" {
		inst.User = "ubuntu"
	}
	for _, t := range i.Tags {
		if aws.ToString(t.Key) == providers.EmulatorPortKey {
			inst.Port, _ = strconv.Atoi(aws.ToString(t.Value))
		}
	}
	inst.State = providers.Error
	if i.State != nil {
		switch i.State.Name {
		case types.InstanceStateNameRunning:
			inst.State = providers.Running
		case types.InstanceStateNamePending:
			inst.State = providers.Starting
		case types.InstanceStateNameStopped, types.InstanceStateNameStopping:
			inst.State = providers.PowerOff
		}
	}
	return inst
}

// Find gets a node back by its ClientToken.
func (p *Provider) Find(ctx context.Context, ref providers.Ref) (providers.Instance, bool, error) {
	c, s, err := p.client(ctx, ref.Spec)
	if err != nil {
		return providers.Instance{}, false, err
	}
	found, err := c.describe(ctx, filter("client-token", ref.Token), filter("instance-state-name", "pending", "running", "stopping", "stopped"))
	if err != nil || len(found) == 0 {
		return providers.Instance{}, false, err
	}
	return instance(found[0], s, ref.Spec), true, nil
}

// Delete terminates the instance and waits until it is gone, so that a
// scaled-in unit is really smaller when delete_nodes returns.
func (p *Provider) Delete(ctx context.Context, ref providers.Ref) error {
	c, _, err := p.client(ctx, ref.Spec)
	if err != nil {
		return err
	}
	_, err = c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{ref.ID}})
	if hasCode(err, "InvalidInstanceID.NotFound") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("aws: terminating %s: %w", ref.ID, explain(err))
	}
	_, err = c.wait(ctx, ref.ID, types.InstanceStateNameTerminated)
	return err
}

// PowerOff stops the instance and waits until it is stopped.
func (p *Provider) PowerOff(ctx context.Context, ref providers.Ref) error {
	c, _, err := p.client(ctx, ref.Spec)
	if err != nil {
		return err
	}
	if _, err := c.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{ref.ID}}); err != nil {
		return fmt.Errorf("aws: stopping %s: %w", ref.ID, explain(err))
	}
	_, err = c.wait(ctx, ref.ID, types.InstanceStateNameStopped)
	return err
}

// PowerOn starts the instance and waits until it runs.
func (p *Provider) PowerOn(ctx context.Context, ref providers.Ref) (providers.Instance, error) {
	c, s, err := p.client(ctx, ref.Spec)
	if err != nil {
		return providers.Instance{}, err
	}
	if _, err := c.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{ref.ID}}); err != nil {
		return providers.Instance{}, fmt.Errorf("aws: starting %s: %w", ref.ID, explain(err))
	}
	i, err := c.wait(ctx, ref.ID, types.InstanceStateNameRunning)
	if err != nil {
		return providers.Instance{}, err
	}
	return instance(i, s, ref.Spec), nil
}

// List returns the run's instances that are not terminated, in every
// region and endpoint the run's units used.
func (p *Provider) List(ctx context.Context, run string, specs []map[string]any) ([]providers.Instance, error) {
	var out []providers.Instance
	err := providers.ForEachClient(specs, p.opener(ctx), func(c *client, fields map[string]any) error {
		found, err := c.describe(ctx, filter("tag:"+TagRun, run), filter("instance-state-name", "pending", "running", "stopping", "stopped"))
		if err != nil {
			return err
		}
		s, _ := specOf(fields)
		for _, i := range found {
			out = append(out, instance(i, s, fields))
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

// DeleteGroup waits for the group's instances to terminate, then deletes
// its security group and key pair.
func (p *Provider) DeleteGroup(ctx context.Context, run, group string, specs []map[string]any) error {
	return providers.ForEachClient(specs, p.opener(ctx), func(c *client, _ map[string]any) error {
		found, err := c.describe(ctx, filter("tag:"+TagRun, run), filter("tag:"+TagGroup, group))
		if err != nil {
			return err
		}
		for _, i := range found {
			if i.State == nil || i.State.Name != types.InstanceStateNameTerminated {
				if _, err := c.wait(ctx, aws.ToString(i.InstanceId), types.InstanceStateNameTerminated); err != nil {
					return err
				}
			}
		}
		return c.access.Remove(ctx, c, run, group)
	})
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

// describe lists the instances that pass the filters, every page.
func (c *client) describe(ctx context.Context, filters ...types.Filter) ([]types.Instance, error) {
	var out []types.Instance
	pages := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{Filters: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("aws: describing instances: %w", explain(err))
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out, nil
}

// instances is the poller's listing: the instances among ids, by id. It
// filters by id rather than asking for the ids, which EC2 refuses whole
// when one of them is not visible yet (its API is eventually consistent).
func (c *client) instances(ctx context.Context, ids []string) (map[string]types.Instance, error) {
	out := map[string]types.Instance{}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), maxFilterValues)]
		ids = ids[len(batch):]
		found, err := c.describe(ctx, filter("instance-id", batch...))
		if err != nil {
			return nil, err
		}
		for _, i := range found {
			out[aws.ToString(i.InstanceId)] = i
		}
	}
	return out, nil
}

// maxFilterValues is how many values EC2 takes in one filter.
const maxFilterValues = 200

// invisibleFor bounds how long a launched instance may stay invisible to
// DescribeInstances before kumo calls it lost.
const invisibleFor = 5 * time.Minute

// wait returns the instance once it is in state want, or fails when it
// reaches a state it cannot leave for want (a launch that ended in
// terminated, say).
func (c *client) wait(ctx context.Context, id string, want types.InstanceStateName) (types.Instance, error) {
	since := time.Now()
	return c.poll.Wait(ctx, id, func(i types.Instance, found bool) (bool, error) {
		if !found || i.State == nil {
			if want == types.InstanceStateNameTerminated {
				return true, nil
			}
			if time.Since(since) < invisibleFor {
				return false, nil
			}
			return false, fmt.Errorf("aws: instance %s not found while waiting for it to be %s", id, want)
		}
		have := i.State.Name
		switch {
		case have == want:
			return true, nil
		case want != types.InstanceStateNameTerminated && (have == types.InstanceStateNameTerminated || have == types.InstanceStateNameShuttingDown):
			reason := ""
			if i.StateReason != nil {
				reason = ": " + aws.ToString(i.StateReason.Message)
			}
			return false, fmt.Errorf("aws: instance %s is %s while waiting for it to be %s%s", id, have, want, reason)
		}
		return false, nil
	})
}

// Describe gives the size of a spec's instances, where known.
func (p *Provider) Describe(fields map[string]any) providers.Size {
	s, _ := specOf(fields)
	size := sizes.InstanceTypes[s.InstanceType]
	size.DiskGB = s.VolumeSize
	return size
}
