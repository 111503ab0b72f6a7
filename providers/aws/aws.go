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
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/kumo-dev/kumo/providers"
)

// PortTag carries the SSH port of an instance of kumo's emulator, where
// all instances share 127.0.0.1. Real instances do not have it: port 22.
const PortTag = "kumo:emulator-ssh-port"

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

	mu      sync.Mutex
	clients map[string]*client
}

// New returns the provider.
func New() *Provider { return &Provider{clients: map[string]*client{}} }

func (p *Provider) Name() string { return "aws" }

// SpecFields of an aws spec.
func (p *Provider) SpecFields() []string {
	return []string{"region", "profile", "endpoint", "instance_type", "image", "volume_size", "volume_type",
		"subnet_id", "ip_addresses", "user_data", "spot", "ports", "user", "api_rate"}
}

// client is an EC2 client for one region/profile/endpoint, with the
// group resources it has ensured and its shared state poller.
type client struct {
	ec2    *ec2.Client
	region string
	mu     sync.Mutex
	groups map[string]groupResources
	images map[string]string
	poll   *poller
}

type groupResources struct{ keyName, groupID string }

// Locate records where a spec's instances live beyond the spec: the
// region (resolved as the SDK would: AWS_REGION, the profile's region),
// the endpoint (AWS_ENDPOINT_URL_EC2 or AWS_ENDPOINT_URL) and the
// profile (AWS_PROFILE). Never keys: destroy from another shell still
// finds credentials where the SDK looks (~/.aws, the environment).
func (p *Provider) Locate(spec map[string]any) map[string]any {
	loc := map[string]any{}
	set := func(k, v string) {
		if v != "" && providers.SpecString(spec, k) == "" {
			loc[k] = v
		}
	}
	set("profile", os.Getenv("AWS_PROFILE"))
	endpoint := os.Getenv("AWS_ENDPOINT_URL_EC2")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	set("endpoint", endpoint)
	if providers.SpecString(spec, "region") == "" {
		opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
		if prof := providers.SpecString(spec, "profile"); prof != "" {
			opts = append(opts, config.WithSharedConfigProfile(prof))
		}
		if cfg, err := config.LoadDefaultConfig(context.Background(), opts...); err == nil {
			set("region", cfg.Region)
		}
	}
	return loc
}

// client returns the EC2 client for spec, failing clearly without
// credentials or a region.
func (p *Provider) client(ctx context.Context, spec map[string]any) (*client, error) {
	endpoint := providers.SpecString(spec, "endpoint")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL_EC2")
	}
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	key := providers.SpecString(spec, "region") + "|" + providers.SpecString(spec, "profile") + "|" + endpoint
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	rate := providers.DefaultAPIRate
	if r := providers.SpecInt(spec, "api_rate"); r > 0 {
		rate = float64(r)
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
				o.MaxAttempts = 10
				o.MaxBackoff = 10 * time.Second
				o.RateLimiter = ratelimit.None
				// A refused connection means nothing listens there: the
				// endpoint is wrong or down, and ten tries with backoff
				// would only make the user wait a minute to hear it.
				o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
					if errors.Is(err, syscall.ECONNREFUSED) {
						return aws.FalseTernary
					}
					return aws.UnknownTernary
				})}, o.Retryables...)
			})
		}),
	}
	if r := providers.SpecString(spec, "region"); r != "" {
		opts = append(opts, config.WithRegion(r))
	}
	if prof := providers.SpecString(spec, "profile"); prof != "" {
		opts = append(opts, config.WithSharedConfigProfile(prof))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: loading configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("aws: no region: give region= in the spec, or set AWS_REGION or a profile's region")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("aws: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or configure ~/.aws (%v)", err)
	}
	c := &client{region: cfg.Region, groups: map[string]groupResources{}, images: map[string]string{}}
	c.ec2 = ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		// Calls wait for the request budget instead of being throttled.
		o.HTTPClient = providers.RateLimitedDoer(o.HTTPClient, rate, max(providers.DefaultAPIBurst, rate))
	})
	interval := p.PollInterval
	if interval == 0 {
		interval = 2 * time.Second
	}
	c.poll = newPoller(c.ec2, interval)
	p.clients[key] = c
	return c, nil
}

// Validate checks credentials, region, instance type and image before
// anything is created.
func (p *Provider) Validate(ctx context.Context, flavor string, spec map[string]any) error {
	c, err := p.client(ctx, spec)
	if err != nil {
		return err
	}
	itype := providers.SpecString(spec, "instance_type")
	if itype == "" {
		return fmt.Errorf("aws: flavor %s sets no instance_type", flavor)
	}
	if _, err := c.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(itype)}}); err != nil {
		return fmt.Errorf("aws: instance type %s in %s: %w", itype, c.region, explain(err))
	}
	_, err = c.image(ctx, providers.SpecString(spec, "image"))
	return err
}

// explain turns an API error into its code and message.
func explain(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

// image resolves an AMI id, or a name (newest image of that name).
func (c *client) image(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", errors.New("aws: the spec gives no image (an AMI id or name)")
	}
	c.mu.Lock()
	id, ok := c.images[name]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
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
		return "", fmt.Errorf("aws: no image named %s in %s", name, c.region)
	}
	sort.Slice(out.Images, func(i, j int) bool {
		return aws.ToString(out.Images[i].CreationDate) > aws.ToString(out.Images[j].CreationDate)
	})
	id = aws.ToString(out.Images[0].ImageId)
	c.mu.Lock()
	c.images[name] = id
	c.mu.Unlock()
	return id, nil
}

// ensureGroup imports the group's key pair and makes its security group,
// both idempotent by name, so a resumed run finds what it made.
func (c *client) ensureGroup(ctx context.Context, run, group, publicKey string, ports []int) (groupResources, error) {
	name, keyName := providers.GroupName(run, group), providers.KeyPairName(run, group, publicKey)
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.groups[keyName]; ok {
		return g, nil
	}
	// A duplicate holds this very key: the name says which key it is.
	_, err := c.ec2.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(keyName), PublicKeyMaterial: []byte(publicKey)})
	if err != nil && !hasCode(err, "InvalidKeyPair.Duplicate") {
		return groupResources{}, fmt.Errorf("aws: importing key pair %s: %w", keyName, explain(err))
	}
	var groupID string
	sg, err := c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String("kumo unit group " + group)})
	switch {
	case err == nil:
		groupID = aws.ToString(sg.GroupId)
	case hasCode(err, "InvalidGroup.Duplicate"):
		out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{name}})
		if err != nil || len(out.SecurityGroups) == 0 {
			return groupResources{}, fmt.Errorf("aws: finding security group %s: %w", name, explain(err))
		}
		groupID = aws.ToString(out.SecurityGroups[0].GroupId)
	default:
		return groupResources{}, fmt.Errorf("aws: creating security group %s: %w", name, explain(err))
	}
	var perms []types.IpPermission
	for _, port := range append([]int{22}, ports...) {
		perms = append(perms, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(int32(port)), ToPort: aws.Int32(int32(port)),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}})
	}
	if _, err := c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(groupID), IpPermissions: perms}); err != nil && !hasCode(err, "InvalidPermission.Duplicate") {
		return groupResources{}, fmt.Errorf("aws: opening ports of %s: %w", name, explain(err))
	}
	g := groupResources{keyName: keyName, groupID: groupID}
	c.groups[keyName] = g
	return g, nil
}

func hasCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// Create launches the node's instance (or gets it back by its
// ClientToken) and waits until it runs.
func (p *Provider) Create(ctx context.Context, req providers.NodeRequest) (providers.Instance, error) {
	c, err := p.client(ctx, req.Spec)
	if err != nil {
		return providers.Instance{}, err
	}
	imageID, err := c.image(ctx, providers.SpecString(req.Spec, "image"))
	if err != nil {
		return providers.Instance{}, err
	}
	g, err := c.ensureGroup(ctx, req.Run, req.Group, req.AuthorizedKey, providers.SpecInts(req.Spec, "ports"))
	if err != nil {
		return providers.Instance{}, err
	}
	in := &ec2.RunInstancesInput{
		ImageId: aws.String(imageID), InstanceType: types.InstanceType(providers.SpecString(req.Spec, "instance_type")),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String(req.Token),
		KeyName: aws.String(g.keyName), SecurityGroupIds: []string{g.groupID},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String("Name"), Value: aws.String(req.Group + "/" + req.Name)},
			{Key: aws.String(TagRun), Value: aws.String(req.Run)}, {Key: aws.String(TagGroup), Value: aws.String(req.Group)},
			{Key: aws.String(TagUnit), Value: aws.String(req.Unit)}, {Key: aws.String(TagNode), Value: aws.String(req.Name)},
		}}},
	}
	if s := providers.SpecString(req.Spec, "subnet_id"); s != "" {
		in.SubnetId = aws.String(s)
	}
	if ips, ok := req.Spec["ip_addresses"].([]any); ok && req.Index >= 1 && req.Index <= len(ips) {
		in.PrivateIpAddress = aws.String(fmt.Sprint(ips[req.Index-1]))
	}
	if ud := providers.SpecString(req.Spec, "user_data"); ud != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(ud)))
	}
	if size := providers.SpecInt(req.Spec, "volume_size"); size > 0 {
		ebs := &types.EbsBlockDevice{VolumeSize: aws.Int32(int32(size)), DeleteOnTermination: aws.Bool(true)}
		if vt := providers.SpecString(req.Spec, "volume_type"); vt != "" {
			ebs.VolumeType = types.VolumeType(vt)
		}
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: ebs}}
	}
	if spot, _ := req.Spec["spot"].(bool); spot {
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}
	}
	out, err := c.ec2.RunInstances(ctx, in)
	if err != nil {
		return providers.Instance{}, fmt.Errorf("aws: launching %s: %w", req.Name, explain(err))
	}
	if len(out.Instances) == 0 {
		return providers.Instance{}, fmt.Errorf("aws: launching %s: no instance in the reservation", req.Name)
	}
	inst, err := c.poll.wait(ctx, aws.ToString(out.Instances[0].InstanceId), types.InstanceStateNameRunning)
	if err != nil {
		return providers.Instance{}, err
	}
	return instance(inst, req.Spec), nil
}

func instance(i types.Instance, spec map[string]any) providers.Instance {
	inst := providers.Instance{ID: aws.ToString(i.InstanceId), Token: aws.ToString(i.ClientToken), Port: 22,
		IP: aws.ToString(i.PublicIpAddress), PrivateIP: aws.ToString(i.PrivateIpAddress), User: providers.SpecString(spec, "user"), Spec: spec}
	if inst.IP == "" {
		inst.IP = inst.PrivateIP
	}
	if inst.User == "" {
		inst.User = "ubuntu"
	}
	for _, t := range i.Tags {
		if aws.ToString(t.Key) == PortTag {
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
	c, err := p.client(ctx, ref.Spec)
	if err != nil {
		return providers.Instance{}, false, err
	}
	out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("client-token"), Values: []string{ref.Token}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	if err != nil {
		return providers.Instance{}, false, fmt.Errorf("aws: %w", explain(err))
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			return instance(i, ref.Spec), true, nil
		}
	}
	return providers.Instance{}, false, nil
}

// Delete terminates the instance and waits until it is gone, so that a
// scaled-in unit is really smaller when delete_nodes returns.
func (p *Provider) Delete(ctx context.Context, ref providers.Ref) error {
	c, err := p.client(ctx, ref.Spec)
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
	_, err = c.poll.wait(ctx, ref.ID, types.InstanceStateNameTerminated)
	return err
}

// PowerOff stops the instance and waits until it is stopped.
func (p *Provider) PowerOff(ctx context.Context, ref providers.Ref) error {
	c, err := p.client(ctx, ref.Spec)
	if err != nil {
		return err
	}
	if _, err := c.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{ref.ID}}); err != nil {
		return fmt.Errorf("aws: stopping %s: %w", ref.ID, explain(err))
	}
	_, err = c.poll.wait(ctx, ref.ID, types.InstanceStateNameStopped)
	return err
}

// PowerOn starts the instance and waits until it runs.
func (p *Provider) PowerOn(ctx context.Context, ref providers.Ref) (providers.Instance, error) {
	c, err := p.client(ctx, ref.Spec)
	if err != nil {
		return providers.Instance{}, err
	}
	if _, err := c.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{ref.ID}}); err != nil {
		return providers.Instance{}, fmt.Errorf("aws: starting %s: %w", ref.ID, explain(err))
	}
	i, err := c.poll.wait(ctx, ref.ID, types.InstanceStateNameRunning)
	if err != nil {
		return providers.Instance{}, err
	}
	return instance(i, ref.Spec), nil
}

// List returns the run's instances that are not terminated, in every
// region and endpoint the run's units used.
func (p *Provider) List(ctx context.Context, run string, specs []map[string]any) ([]providers.Instance, error) {
	var out []providers.Instance
	err := providers.ForEachClient(specs, p.opener(ctx), func(c *client, spec map[string]any) error {
		res, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
			{Name: aws.String("tag:" + TagRun), Values: []string{run}},
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
		}})
		if err != nil {
			return fmt.Errorf("aws: listing %s: %w", run, explain(err))
		}
		for _, r := range res.Reservations {
			for _, i := range r.Instances {
				out = append(out, instance(i, spec))
			}
		}
		return nil
	})
	return out, err
}

// opener is p.client bound to ctx, for providers.ForEachClient.
func (p *Provider) opener(ctx context.Context) func(map[string]any) (*client, error) {
	return func(spec map[string]any) (*client, error) { return p.client(ctx, spec) }
}

// DeleteGroup waits for the group's instances to terminate, then deletes
// its security group and key pair.
func (p *Provider) DeleteGroup(ctx context.Context, run, group string, specs []map[string]any) error {
	name := providers.GroupName(run, group)
	return providers.ForEachClient(specs, p.opener(ctx), func(c *client, _ map[string]any) error {
		res, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
			{Name: aws.String("tag:" + TagRun), Values: []string{run}}, {Name: aws.String("tag:" + TagGroup), Values: []string{group}},
		}})
		if err != nil {
			return fmt.Errorf("aws: %w", explain(err))
		}
		for _, r := range res.Reservations {
			for _, i := range r.Instances {
				if i.State == nil || i.State.Name != types.InstanceStateNameTerminated {
					if _, err := c.poll.wait(ctx, aws.ToString(i.InstanceId), types.InstanceStateNameTerminated); err != nil {
						return err
					}
				}
			}
		}
		sgs, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}})
		if err != nil {
			return fmt.Errorf("aws: %w", explain(err))
		}
		for _, sg := range sgs.SecurityGroups {
			if _, err := c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err != nil && !hasCode(err, "InvalidGroup.NotFound") {
				return fmt.Errorf("aws: deleting security group %s: %w", name, explain(err))
			}
		}
		keys, err := c.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
		if err != nil {
			return fmt.Errorf("aws: listing key pairs: %w", explain(err))
		}
		for _, k := range keys.KeyPairs {
			kn := aws.ToString(k.KeyName)
			if !providers.IsGroupKeyPair(kn, run, group) {
				continue
			}
			if _, err := c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(kn)}); err != nil {
				return fmt.Errorf("aws: deleting key pair %s: %w", kn, explain(err))
			}
			c.mu.Lock()
			delete(c.groups, kn)
			c.mu.Unlock()
		}
		return nil
	})
}
