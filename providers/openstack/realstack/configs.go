package realstack

// The services' configuration: one admin user for everything (a test
// cloud's, not a deployment's), databases on MariaDB's socket, RPC on
// RabbitMQ, every listener on loopback. Their {{.Placeholders}} are
// replaced by the cloud's ports and folder (Cloud.write).

const authBlock = `www_authenticate_uri = {{.AuthURL}}
auth_url = {{.AuthURL}}
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = admin
username = admin
password = {{.Password}}
region_name = RegionOne
`

const keystoneConf = `[DEFAULT]
log_file = {{.Dir}}/keystone/keystone.log
[database]
connection = {{.DB "keystone"}}
[token]
provider = fernet
[fernet_tokens]
key_repository = {{.Dir}}/keystone/fernet
[credential]
key_repository = {{.Dir}}/keystone/credential
`

const placementConf = `[DEFAULT]
log_file = {{.Dir}}/placement/placement.log
[placement_database]
connection = {{.DB "placement"}}
[api]
auth_strategy = keystone
[keystone_authtoken]
` + authBlock

const glanceConf = `[DEFAULT]
bind_host = 127.0.0.1
bind_port = {{.Ports.Glance}}
workers = 1
log_file = {{.Dir}}/glance/glance.log
enabled_backends = file:file
[database]
connection = {{.DB "glance"}}
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = {{.Dir}}/glance/images
[os_glance_tasks_store]
filesystem_store_datadir = {{.Dir}}/glance/tasks
[os_glance_staging_store]
filesystem_store_datadir = {{.Dir}}/glance/staging
[paste_deploy]
flavor = keystone
config_file = {{.Dir}}/glance/glance-api-paste.ini
[keystone_authtoken]
` + authBlock

// The WSGI pipelines: the packages that ship these files (glance-common,
// nova-common, neutron-common) also configure databases and users of the
// host through debconf, so the harness installs only the Python packages
// and writes the pipelines itself, the shortest that serve the APIs.
const glancePaste = `[pipeline:glance-api-keystone]
pipeline = versionnegotiation authtoken context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true
`

const neutronConf = `[DEFAULT]
bind_host = 127.0.0.1
bind_port = {{.Ports.Neutron}}
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
api_paste_config = {{.Dir}}/neutron/api-paste.ini
transport_url = {{.Transport}}
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
log_file = {{.Dir}}/neutron/neutron.log
state_path = {{.Dir}}/neutron/state
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
[database]
connection = {{.DB "neutron"}}
[oslo_concurrency]
lock_path = {{.Dir}}/neutron/lock
[ml2]
type_drivers = flat,local
tenant_network_types = local
mechanism_drivers = kumo_bind
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[keystone_authtoken]
` + authBlock

const neutronPaste = `[composite:neutron]
use = egg:Paste#urlmap
/: neutronversions_composite
/v2.0: neutronapi_v2_0

[composite:neutronapi_v2_0]
use = call:neutron.auth:pipeline_factory
keystone = request_id catch_errors authtoken keystonecontext extensions neutronapiapp_v2_0

[composite:neutronversions_composite]
use = call:neutron.auth:pipeline_factory
keystone = neutronversions

[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory

[filter:catch_errors]
paste.filter_factory = oslo_middleware:CatchErrors.factory

[filter:keystonecontext]
paste.filter_factory = neutron.auth:NeutronKeystoneContext.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:extensions]
paste.filter_factory = neutron.api.extensions:plugin_aware_extension_middleware_factory

[app:neutronversions]
paste.app_factory = neutron.pecan_wsgi.app:versions_factory

[app:neutronapiapp_v2_0]
paste.app_factory = neutron.api.v2.router:APIRouter.factory
`

// bindDriver is an ML2 mechanism driver for a cloud without agents, on
// PYTHONPATH with an entry point of its own: Nova's fake hypervisor has
// no virtual switch for an agent to report, so every port is bound as
// Open vSwitch's would be, and active at once. Without it Nova's ports
// fail to bind and servers go to ERROR.
const bindDriver = `"""kumo's test cloud: bind every port, as Open vSwitch's driver would."""
from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class BindAll(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True},
                                status=constants.PORT_STATUS_ACTIVE)
            return
`

const novaConf = `[DEFAULT]
transport_url = {{.Transport}}
compute_driver = fake.FakeDriver
host = kumo-fake-host
my_ip = 127.0.0.1
state_path = {{.Dir}}/nova/state
instances_path = {{.Dir}}/nova/instances
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = {{.Ports.Nova}}
osapi_compute_workers = 1
enabled_apis = osapi_compute
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = {{.Dir}}/nova/api-paste.ini
[api_database]
connection = {{.DB "nova_api"}}
[database]
connection = {{.DB "nova"}}
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 2
[oslo_concurrency]
lock_path = {{.Dir}}/nova/lock
[glance]
region_name = RegionOne
[keystone_authtoken]
` + authBlock + `[placement]
` + authBlock + `[neutron]
` + authBlock

const novaPaste = `[composite:osapi_compute]
use = call:nova.api.openstack.urlmap:urlmap_factory
/: oscomputeversions
/v2.1: oscomputeversion_v2
/v2.1/+: openstack_compute_api_v21

[composite:openstack_compute_api_v21]
use = call:nova.api.auth:pipeline_factory_v21
keystone = compute_req_id faultwrap sizelimit authtoken keystonecontext osapi_compute_app_v21

[filter:compute_req_id]
paste.filter_factory = nova.api.compute_req_id:ComputeReqIdMiddleware.factory

[filter:faultwrap]
paste.filter_factory = nova.api.openstack:FaultWrapper.factory

[filter:sizelimit]
paste.filter_factory = oslo_middleware:RequestBodySizeLimiter.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:keystonecontext]
paste.filter_factory = nova.api.auth:NovaKeystoneContext.factory

[app:osapi_compute_app_v21]
paste.app_factory = nova.api.openstack.compute:APIRouterV21.factory

[pipeline:oscomputeversions]
pipeline = faultwrap oscomputeversionapp

[pipeline:oscomputeversion_v2]
pipeline = compute_req_id faultwrap oscomputeversionapp_v2

[app:oscomputeversionapp]
paste.app_factory = nova.api.openstack.compute.versions:Versions.factory

[app:oscomputeversionapp_v2]
paste.app_factory = nova.api.openstack.compute.versions:VersionsV2.factory
`
